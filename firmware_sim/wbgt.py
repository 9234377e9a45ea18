"""Indoor WBGT estimated from air temperature and relative humidity.

Indoors there is no solar load, so WBGT is estimated from Ta and RH alone with the
regression behind the Japanese indoor WBGT chart (日本生気象学会「日常生活における熱中症
予防指針」室内用 WBGT 簡易推定図; 小野雅司 et al.), which the Ministry of the Environment's
heat-illness pages also use::

    WBGT = 0.725·Ta + 0.0368·RH + 0.00364·Ta·RH − 3.246     (°C, Ta in °C, RH in %)

Stages (環境省 暑さ指数): ≥ 28 °C 厳重警戒 (severe_warning), ≥ 31 °C 危険 (danger).
The cloud's heat detector must use the same formula so labels and detections agree.
"""

from __future__ import annotations

SEVERE_WARNING_C = 28.0
DANGER_C = 31.0


def indoor_wbgt(temp_c: float, rh_pct: float) -> float:
    return 0.725 * temp_c + 0.0368 * rh_pct + 0.00364 * temp_c * rh_pct - 3.246
