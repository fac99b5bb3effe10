"""The event sensors whose files the readers decode, and how file headers name them.

A :class:`Sensor` is a pixel array (W x H, two polarities). Files name their sensor in
different ways; :func:`sensor_from_name` maps each of them to one of :data:`SENSORS`:

- AEDAT 2.0 (jAER) ``# AEChip: <Java class>``: ``ch.unizh.ini.jaer.chip.retina.DVS128``
  (also ``Tmpdiff128``), ``eu.seebetter.ini.chips.davis.DAVIS240A|B|C`` and the DAVIS346
  classes ``Davis346B|blue|red|redColor|BColor|cBSI|Zynq`` (``Davis346mini`` is jAER's old
  name of ``Davis346blue``); sizes from jAER's ``DAVIS240BaseCamera`` (240 x 180) and
  ``Davis346BaseCamera`` (346 x 260).
- AEDAT 3.1 (cAER) ``#Source N: <chip>`` and AEDAT 4 (DV) camera names: ``DVS128``,
  ``DAVIS240A|B|C``, ``DAVIS346A|B|C``, optionally followed by ``_<serial>``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from data_tools.errors import ConfigError


@dataclass(frozen=True)
class Sensor:
    """A DVS pixel array: name (as the CLI's --sensor takes it), width and height in pixels."""

    name: str
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int, int]:
        """(W, H, P) as the event containers and encoders take it."""
        return (self.width, self.height, 2)


DVS128 = Sensor("dvs128", 128, 128)
DAVIS240 = Sensor("davis240", 240, 180)
DAVIS346 = Sensor("davis346", 346, 260)
SENSORS = {s.name: s for s in (DVS128, DAVIS240, DAVIS346)}

_NAMES = ((re.compile(r"(dvs128|tmpdiff128)"), DVS128),
          (re.compile(r"davis240[abc]?"), DAVIS240),
          (re.compile(r"davis346(a|b|c|blue|red|redcolor|bcolor|cbsi|zynq|mini)?"), DAVIS346))


def sensor_from_name(name: str) -> Sensor | None:
    """The sensor a chip name denotes (a jAER class name, a cAER source or a DV camera name,
    case-insensitive; a Java package prefix and a ``_serial`` suffix are ignored), else None."""
    token = name.strip().rsplit(".", 1)[-1].split("_", 1)[0].lower()
    for pattern, sensor in _NAMES:
        if pattern.fullmatch(token):
            return sensor
    return None


def sensor_in_text(text: str) -> Sensor | None:
    """The sensor whose name appears anywhere in text (e.g. a jAER ``HardwareInterface`` line
    such as ``CypressFX2DVS128HardwareInterface``), when exactly one family appears; else None."""
    low = text.lower()
    found = {sensor for pattern, sensor in _NAMES if pattern.search(low)}
    return found.pop() if len(found) == 1 else None


def get_sensor(sensor) -> Sensor | None:
    """A Sensor from a Sensor, a name in SENSORS (e.g. ``"davis346"``) or None; ConfigError
    naming the choices for anything else."""
    if sensor is None or isinstance(sensor, Sensor):
        return sensor
    if str(sensor).lower() in SENSORS:
        return SENSORS[str(sensor).lower()]
    raise ConfigError(f"unknown sensor {sensor!r}: expected one of {', '.join(SENSORS)}")
