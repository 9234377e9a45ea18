"""Read coalescing: turn a register map into as few Modbus requests as the limits allow.

Registers of the same function whose spans touch or overlap are merged into one
request of at most 125 registers (2000 bits for coils and discrete inputs), the
Modbus protocol limits for function codes 1-4. Gaps are never bridged: reading an
address a device does not implement earns an ILLEGAL_DATA_ADDRESS exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.config import Function, Register

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass
class Block:
    """One request: ``count`` items of ``function`` from ``address``, and what they hold."""

    function: Function
    address: int
    count: int
    registers: list[Register] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.address + self.count


def limit(function: Function) -> int:
    return MAX_BITS if function in (Function.COIL, Function.DISCRETE) else MAX_REGISTERS


def plan(registers: list[Register]) -> list[Block]:
    """Coalesced requests for a register map, ordered by function then address."""
    blocks: list[Block] = []
    by_function: dict[Function, list[Register]] = {}
    for reg in registers:
        by_function.setdefault(reg.function, []).append(reg)
    for function in sorted(by_function, key=list(Function).index):
        cap = limit(function)
        current: Block | None = None
        for reg in sorted(by_function[function], key=lambda r: (r.address, r.count)):
            end = reg.address + reg.count
            if current is not None and reg.address <= current.end and end - current.address <= cap:
                current.count = max(current.count, end - current.address)
                current.registers.append(reg)
                continue
            current = Block(function, reg.address, reg.count, [reg])
            blocks.append(current)
    return blocks
