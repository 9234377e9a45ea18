"""Modbus driver against real pymodbus servers: types, orders, coalescing, faults."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from pymodbus import FramerType

from edge.config import ByteOrder, DataType, Device, Function, Register, parse_config
from edge.drivers import create
from edge.drivers.modbus import codec
from edge.drivers.modbus.driver import ModbusDriver
from edge.drivers.modbus.plan import plan
from edge.errors import DeviceError
from tests.edge.peers import FC, PtyCable, rtu_server, server_context, tcp_server


def f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


SAMPLES: dict[DataType, Any] = {
    DataType.INT16: -12345,
    DataType.UINT16: 65000,
    DataType.INT32: -2_000_000_001,
    DataType.UINT32: 4_000_000_001,
    DataType.INT64: -9_000_000_000_000_000_001,
    DataType.UINT64: 18_000_000_000_000_000_001,
    DataType.FLOAT32: f32(-0.86),
    DataType.FLOAT64: 1.234567890123e-300,
}


def device(registers: list[Register], port: int, **kw: Any) -> Device:
    kw = {"unit_id": 1, "timeout_s": 0.5, **kw}
    return Device(
        id="dev-1",
        kind="water_block",
        driver="modbus_tcp",
        host="127.0.0.1",
        port=port,
        registers=registers,
        **kw,
    )


def put(context: Any, unit: int, reg: Register, value: Any) -> None:
    encoded = codec.encode(reg, value)
    if isinstance(encoded, bool):
        context[unit].setValues(FC[reg.function.value], reg.address, [encoded])
    else:
        context[unit].setValues(FC[reg.function.value], reg.address, encoded)


def typed_map() -> tuple[list[Register], dict[str, Any]]:
    """Every numeric type in every byte order, contiguous, plus string, bit, bool, scaling."""
    regs: list[Register] = []
    expect: dict[str, Any] = {}
    addr = 0
    for t, value in SAMPLES.items():
        for order in ByteOrder:
            name = f"{t.value}_{order.value}"
            reg = Register(field=name, address=addr, type=t, order=order)
            regs.append(reg)
            expect[name] = value
            addr += reg.count
    for order in ByteOrder:
        reg = Register(field=f"s_{order.value}", address=addr, type="string", length=5, order=order)
        regs.append(reg)
        expect[reg.field] = "AKITA-01"
        addr += 5
    scaled = Register(field="scaled", address=addr, type="int16", scale=0.1, offset=-40.0)
    regs.append(scaled)
    expect["scaled"] = -12.5
    return regs, expect


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_every_type_and_byte_order_round_trips_exactly() -> None:
    regs, expect = typed_map()
    bits = [
        Register(field="c0", function="coil", address=3, type="bool"),
        Register(field="c1", function="coil", address=4, type="bool"),
        Register(field="d0", function="discrete", address=10, type="bool"),
        Register(field="b3", function="input", address=7, type="bit", bit=3),
        Register(field="b15", function="input", address=7, type="bit", bit=15),
        Register(field="b0", function="input", address=7, type="bit", bit=0),
    ]
    expect.update(c0=True, c1=False, d0=True, b3=True, b15=True, b0=False)

    async def go() -> None:
        ctx = server_context([1])
        for reg in regs:
            put(ctx, 1, reg, expect[reg.field])
        put(ctx, 1, bits[0], True)
        put(ctx, 1, bits[2], True)
        ctx[1].setValues(4, 7, [(1 << 3) | (1 << 15)])
        async with tcp_server(ctx) as port:
            drv = ModbusDriver(device(regs + bits, port))
            await drv.open()
            try:
                got = await drv.read()
            finally:
                await drv.close()
        assert got == expect
        for name, value in got.items():
            assert type(value) is type(expect[name]), name
        # holding (one block, < 125 regs), coils 3-4, discrete 10, input 7
        assert drv.requests == 4

    run(go())


def put_shared(context: Any, unit: int, regs: list[Register], values: dict[str, Any]) -> None:
    """Several in-register types share one register: OR their encodings, as a device would."""
    word = 0
    for reg in regs:
        value = {n: values[n] for n in reg.fields} if reg.bits else values[reg.field]
        encoded = codec.encode(reg, value)
        assert isinstance(encoded, list) and len(encoded) == 1
        word |= encoded[0]
    context[unit].setValues(FC[regs[0].function.value], regs[0].address, [word])


def test_byte_bits_and_bitfield_round_trip_through_a_server() -> None:
    # register 20: quality 0-99 in the low byte, a firmware code in the high byte (TUF-2000M 92)
    # register 21: a 4-bit mode in bits 12-15, a 3-bit count scaled x0.5 in bits 4-6, and named
    # alarm bits 0, 3 and 9; the same three kinds again as input registers at 5
    shared: list[list[Register]] = []
    expect: dict[str, Any] = {}
    for function, base in (("holding", 20), ("input", 5)):
        p = function[0]
        byte_regs = [
            Register(field=f"{p}_hi", function=function, address=base, type="uint8", byte="high"),
            Register(field=f"{p}_lo", function=function, address=base, type="uint8", byte="low"),
        ]
        bit_regs = [
            Register(
                field=f"{p}_mode",
                function=function,
                address=base + 1,
                type="bits",
                mask=0xF000,
                shift=12,
            ),
            Register(
                field=f"{p}_count",
                function=function,
                address=base + 1,
                type="bits",
                mask=0x0070,
                shift=4,
                scale=0.5,
            ),
            Register(
                function=function,
                address=base + 1,
                type="bitfield",
                bits={f"{p}_fault_a": 0, f"{p}_fault_b": 3, f"{p}_fault_c": 9},
            ),
        ]
        shared += [byte_regs, bit_regs]
        expect.update(
            {
                f"{p}_hi": 0xC3,
                f"{p}_lo": 85,
                f"{p}_mode": 0xB,
                f"{p}_count": 3.5,
                f"{p}_fault_a": True,
                f"{p}_fault_b": False,
                f"{p}_fault_c": True,
            }
        )

    async def go() -> dict[str, Any]:
        ctx = server_context([1])
        for group in shared:
            put_shared(ctx, 1, group, expect)
        # the words as a device holds them, by hand: the codec is not checked against itself
        assert ctx[1].getValues(3, 20, 2) == [0xC355, 0xB000 | (7 << 4) | 1 | (1 << 9)]
        async with tcp_server(ctx) as port:
            drv = ModbusDriver(device([r for g in shared for r in g], port))
            try:
                return dict(await drv.read())
            finally:
                await drv.close()

    got = run(go())
    assert got == expect
    for name, value in got.items():
        assert type(value) is type(expect[name]), name


@pytest.mark.parametrize(
    ("register", "message"),
    [
        ({"field": "q", "address": 0, "type": "uint8"}, "'byte' (high or low) is required"),
        (
            {"field": "q", "address": 0, "type": "uint8", "byte": "low", "order": "CDAB"},
            "'order' does not apply to type 'uint8'",
        ),
        ({"field": "q", "address": 0, "type": "bits"}, "'mask' is required"),
        ({"field": "q", "address": 0, "type": "uint16", "shift": 3}, "'shift' is only allowed"),
        (
            {"field": "q", "address": 0, "type": "bitfield", "bits": {"a": 0}},
            "names its fields in 'bits'",
        ),
        ({"address": 0, "type": "bitfield", "bits": {"a": 16}}, "bits.a: bit 16 is not 0..15"),
        ({"address": 0, "type": "bitfield", "bits": {"a": 1, "b": 1}}, "two fields to the same"),
        ({"address": 0, "type": "uint16"}, "'field' is required"),
    ],
)
def test_in_register_types_refuse_bad_options(register: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        Register.model_validate(register)
    assert message in str(err.value)


def test_in_register_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit a byte"):
        codec.encode(Register(field="q", address=0, type="uint8", byte="low"), 256)
    with pytest.raises(ValueError, match="does not fit mask 0xf0"):
        codec.encode(Register(field="q", address=0, type="bits", mask=0xF0, shift=4), 16)


def test_reads_are_coalesced_within_modbus_limits() -> None:
    # 150 contiguous uint16 holding registers -> 2 reads (125 + 25); a gap starts a new read;
    # 2100 contiguous coils -> 2 reads (2000 + 100).
    regs = [Register(field=f"h{i}", address=i, type="uint16") for i in range(150)]
    regs.append(Register(field="far", address=300, type="float32"))
    regs += [
        Register(field=f"c{i}", function="coil", address=i, type="bool") for i in range(0, 2100)
    ]
    blocks = plan(regs)
    assert [(b.function, b.address, b.count) for b in blocks] == [
        (Function.COIL, 0, 2000),
        (Function.COIL, 2000, 100),
        (Function.HOLDING, 0, 125),
        (Function.HOLDING, 125, 25),
        (Function.HOLDING, 300, 2),
    ]

    async def go() -> None:
        ctx = server_context([1], size=2200)
        for i in range(150):
            ctx[1].setValues(3, i, [i * 3])
        ctx[1].setValues(1, 2099, [True])
        async with tcp_server(ctx) as port:
            drv = ModbusDriver(device(regs, port))
            got = await drv.read()
            assert drv.requests == 5
            await drv.read()
            assert drv.requests == 10  # exactly five requests per poll
            await drv.close()
        assert got["h149"] == 447 and got["c2099"] is True and got["c0"] is False

    run(go())


def test_exception_and_timeout_give_reasons() -> None:
    async def go() -> None:
        ctx = server_context([1], size=50)
        async with tcp_server(ctx) as port:
            bad_addr = ModbusDriver(device([Register(field="x", address=300)], port))
            with pytest.raises(DeviceError) as err:
                await bad_addr.read()
            assert "ILLEGAL_DATA_ADDRESS" in err.value.reason
            await bad_addr.close()
        # a hung device: accepts the connection, never answers
        hung = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        hung_port = hung.sockets[0].getsockname()[1]
        silent = ModbusDriver(device([Register(field="x", address=1)], hung_port))
        with pytest.raises(DeviceError) as err:
            await silent.read()
        assert err.value.reason == "timeout"
        await silent.close()
        hung.close()
        refused = ModbusDriver(device([Register(field="x", address=1)], port))
        with pytest.raises(DeviceError) as err:
            await refused.read()
        assert "connect failed" in err.value.reason
        await refused.close()

    run(go())


def rtu_config(cable: PtyCable, units: list[int], registers: list[dict[str, Any]]) -> Any:
    return parse_config(
        {
            "gateway": {"id": "gw-t"},
            "buses": [{"name": "rs485", "port": cable.host_path, "baudrate": 115200}],
            "devices": [
                {
                    "id": f"pump-{u}",
                    "kind": "manhole_pump",
                    "driver": "modbus_rtu",
                    "bus": "rs485",
                    "unit_id": u,
                    "timeout_s": 0.5,
                    "registers": registers,
                }
                for u in units
            ],
        }
    )


def test_three_rtu_slaves_share_one_pty_bus_without_interleaving() -> None:
    registers = [
        {"field": "level", "function": "input", "address": 0, "type": "uint16", "scale": 0.001},
        {
            "field": "pump1_run_hours",
            "function": "input",
            "address": 1,
            "type": "uint32",
            "order": "CDAB",
        },
        {"field": "pump1_running", "function": "discrete", "address": 0, "type": "bool"},
    ]

    async def go() -> None:
        cable = PtyCable().open()
        ctx = server_context([1, 2, 3], size=20)
        for u in (1, 2, 3):
            ctx[u].setValues(4, 0, [1000 * u, 7 * u, 0])
            ctx[u].setValues(2, 0, [u == 2])
        cfg = rtu_config(cable, [1, 2, 3], registers)
        try:
            async with rtu_server(ctx, cable):
                drivers = [create(d, cfg) for d in cfg.devices]
                for d in drivers:
                    await d.open()
                for _ in range(5):
                    results = await asyncio.gather(*(d.read() for d in drivers))
                for d in drivers:
                    await d.close()
        finally:
            cable.close()
        for u, res in zip((1, 2, 3), results, strict=True):
            assert res == {"level": u * 1.0, "pump1_run_hours": 7 * u, "pump1_running": u == 2}
        # 3 slaves x 5 polls x 2 requests; each request answered before the next one starts
        directions = [d for _, d, _ in cable.log]
        collapsed = [d for i, d in enumerate(directions) if i == 0 or directions[i - 1] != d]
        assert collapsed == ["req", "resp"] * 30

    run(go())


def test_garbage_on_the_serial_line_is_a_reason_not_a_crash() -> None:
    registers = [{"field": "level", "function": "input", "address": 0, "type": "uint16"}]

    async def go() -> None:
        cable = PtyCable().open()
        ctx = server_context([1], size=20)
        ctx[1].setValues(4, 0, [42])
        cfg = rtu_config(cable, [1], registers)
        try:
            async with rtu_server(ctx, cable):
                drv = create(cfg.devices[0], cfg)
                assert isinstance(drv, ModbusDriver)
                await drv.open()
                assert await drv.read() == {"level": 42}
                cable.corrupt = True
                with pytest.raises(DeviceError) as err:
                    await drv.read()
                assert err.value.reason.startswith("garbage frame")
                cable.corrupt = False
                await asyncio.sleep(0.2)
                assert await drv.read() == {"level": 42}  # recovers on a clean line
                await drv.close()
        finally:
            cable.close()

    run(go())


def test_rtu_over_tcp() -> None:
    reg = Register(field="flow", address=0, type="float32", order="CDAB")

    async def go() -> None:
        ctx = server_context([5], size=20)
        put(ctx, 5, reg, f32(-0.86))
        async with tcp_server(ctx, framer=FramerType.RTU) as port:
            dev = Device(
                id="conv-1",
                kind="water_block",
                driver="modbus_rtu_over_tcp",
                host="127.0.0.1",
                port=port,
                unit_id=5,
                registers=[reg],
            )
            drv = ModbusDriver(dev)
            assert await drv.read() == {"flow": f32(-0.86)}
            await drv.close()

    run(go())


def test_one_failing_block_marks_only_its_fields_missing() -> None:
    # flow answers; totaliser sits where the device answers exception 02
    regs = [
        Register(field="flow", address=0, type="float32", order="CDAB"),
        Register(field="totaliser", address=300, type="uint32"),
    ]

    async def go() -> tuple[dict[str, Any], dict[str, str], int]:
        ctx = server_context([1], size=50)
        put(ctx, 1, regs[0], f32(-0.86))
        async with tcp_server(ctx) as port:
            drv = ModbusDriver(device(regs, port))
            try:
                return await drv.read(), drv.missing, drv.requests
            finally:
                await drv.close()

    values, missing, requests = run(go())
    assert values == {"flow": f32(-0.86)}
    assert missing == {"totaliser": "modbus exception ILLEGAL_DATA_ADDRESS (2)"}
    assert requests == 2


def test_a_peer_that_hangs_up_is_connection_lost() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(12)  # the request arrives, then the converter drops the line
        writer.close()

    async def go() -> tuple[str, dict[str, str], int]:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        regs = [
            Register(field="flow", address=0, type="float32"),
            Register(field="totaliser", address=40, type="uint32"),
        ]
        drv = ModbusDriver(device(regs, port, timeout_s=5.0))
        try:
            with pytest.raises(DeviceError) as err:
                await drv.read()
        finally:
            await drv.close()
            server.close()
        return err.value.reason, drv.missing, drv.requests

    reason, missing, requests = run(go())
    assert reason == "connection lost"
    assert missing == {"flow": "connection lost", "totaliser": "connection lost"}
    assert requests == 1  # the second block is not tried against a peer that is gone


def test_a_bad_crc_on_rtu_is_bad_checksum() -> None:
    registers = [{"field": "level", "function": "input", "address": 0, "type": "uint16"}]

    async def go() -> str:
        cable = PtyCable().open()
        ctx = server_context([1], size=20)
        ctx[1].setValues(4, 0, [42])
        cfg = rtu_config(cable, [1], registers)
        try:
            async with rtu_server(ctx, cable):
                drv = create(cfg.devices[0], cfg)
                await drv.open()
                assert await drv.read() == {"level": 42}
                cable.bad_crc = True
                with pytest.raises(DeviceError) as err:
                    await drv.read()
                cable.bad_crc = False
                assert await drv.read() == {"level": 42}  # the next clean frame is read
                await drv.close()
        finally:
            cable.close()
        return err.value.reason

    assert run(go()) == "bad checksum"
