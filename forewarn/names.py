"""Human names with units for sensors and model features: ``process_temp__min_24`` reads
``Process temperature — min over 24 h (K)``.

Feature names come from ``models.features.FeatureSpec.feature_names``: a raw sensor ``s``, window
statistics ``s__{stat}_{w}`` (``w`` rows of hourly roll-ups, so hours), smoothed values
``s__ewm_{span}``, ``time_since_maintenance`` and ``regime``. Units come from the asset registry
(``{sensor: unit}``); without one a name carries no unit. Pure: no I/O.

>>> human_name("process_temp__min_24", {"process_temp": "K"})
'Process temperature — min over 24 h (K)'
>>> human_name("vibration_rms__slope_12", {"vibration_rms": "mm/s"})
'Vibration (RMS) — trend over 12 h (mm/s per h)'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SENSORS: dict[str, str] = {
    "air_temp": "Air temperature",
    "process_temp": "Process temperature",
    "rotational_speed": "Rotational speed",
    "torque": "Torque",
    "tool_wear": "Tool wear",
    "vibration_rms": "Vibration (RMS)",
    "bearing_temp": "Bearing temperature",
    "flow": "Flow",
    "pressure": "Pressure",
    "motor_current": "Motor current",
    "t2": "Fan inlet temperature (T2)",
    "t24": "LPC outlet temperature (T24)",
    "t30": "HPC outlet temperature (T30)",
    "t50": "LPT outlet temperature (T50)",
    "p2": "Fan inlet pressure (P2)",
    "p15": "Bypass duct pressure (P15)",
    "p30": "HPC outlet pressure (P30)",
    "nf": "Fan speed (Nf)",
    "nc": "Core speed (Nc)",
    "epr": "Engine pressure ratio (EPR)",
    "ps30": "HPC static pressure (Ps30)",
    "phi": "Fuel flow to Ps30 ratio (phi)",
    "nrf": "Corrected fan speed (NRf)",
    "nrc": "Corrected core speed (NRc)",
    "bpr": "Bypass ratio (BPR)",
    "farb": "Burner fuel-air ratio",
    "htbleed": "Bleed enthalpy",
    "nf_dmd": "Demanded fan speed",
    "pcnfr_dmd": "Demanded corrected fan speed",
    "w31": "HPT coolant bleed (W31)",
    "w32": "LPT coolant bleed (W32)",
}
STATS: dict[str, str] = {
    "mean": "mean",
    "std": "variability (std. dev.)",
    "min": "min",
    "max": "max",
    "slope": "trend",
}
UNIT_SYMBOLS = {"degC": "°C", "degR": "°R", "degF": "°F", "m3/h": "m³/h", "-": ""}
SPECIAL = {"time_since_maintenance": "Time since maintenance (h)", "regime": "Operating regime"}
_FEATURE = re.compile(r"^(?P<sensor>.+?)__(?P<stat>[a-z]+)_(?P<n>\d+)$")


def unit_symbol(unit: str | None) -> str:
    """A unit as people write it (``degC`` -> ``°C``; dimensionless -> empty)."""
    return "" if not unit else UNIT_SYMBOLS.get(unit, unit)


def sensor_name(sensor: str, unit: str | None = None) -> str:
    """``Process temperature (K)``; an unknown sensor gets its name with spaces."""
    base = SENSORS.get(sensor) or sensor.replace("_", " ").capitalize()
    u = unit_symbol(unit)
    return f"{base} ({u})" if u else base


def human_name(feature: str, units: Mapping[str, str] | None = None) -> str:
    """The readable name of a sensor or model feature, with its unit when known."""
    if feature in SPECIAL:
        return SPECIAL[feature]
    units = units or {}
    m = _FEATURE.match(feature)
    if m is None:
        return sensor_name(feature, units.get(feature))
    sensor, stat, n = m["sensor"], m["stat"], int(m["n"])
    base = SENSORS.get(sensor) or sensor.replace("_", " ").capitalize()
    u = unit_symbol(units.get(sensor))
    if stat == "ewm":
        what = f"smoothed over about {n} h"
    elif stat in STATS:
        what = f"{STATS[stat]} over {n} h"
    else:
        what = f"{stat} over {n} h"
    if stat == "slope" and u:
        u = f"{u} per h"
    return f"{base} — {what}" + (f" ({u})" if u else "")
