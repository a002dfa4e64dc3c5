"""Wheel geometry from a TORCS car's `.xml` parameter file (the bodies ship without wheels)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r"<section\s+name=\"([^\"]*)\"\s*>|</section\s*>|<attnum\s+([^>]*?)/?>", re.IGNORECASE)
_ATTR = re.compile(r"(\w+)\s*=\s*\"([^\"]*)\"")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_UNITS_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
WHEEL_SECTIONS = ("Front Right Wheel", "Front Left Wheel", "Rear Right Wheel", "Rear Left Wheel")


class CarXMLError(ValueError):
    """Raised when a car's parameter file lacks the wheel or axle values; the message names the file."""


@dataclass(frozen=True)
class WheelSpec:
    """One wheel in the TORCS car frame (x forward, y left, z up; metres).

    Attributes:
        name: The XML section, e.g. "Front Left Wheel".
        x: Axle position along the car.
        y: Lateral position of the wheel centre.
        radius: Tyre outer radius (rim radius + sidewall).
        rim_radius: Rim radius.
        width: Tyre width.
        ride_height: Body ride height at this wheel.
    """

    name: str
    x: float
    y: float
    radius: float
    rim_radius: float
    width: float
    ride_height: float


def parse_params(text: str) -> dict[str, dict[str, float]]:
    """Collect the numeric attributes of every section, converted to metres where a length unit is given.

    Args:
        text: The XML text (TORCS `params` format; its external DTD and entities are not needed).

    Returns:
        `{section path: {attribute name: value}}`, where a nested section's path joins names with "/" and the
        innermost name alone is also a key (the car sections used here have unique names).
    """
    text = _COMMENT.sub("", text)
    stack: list[str] = []
    sections: dict[str, dict[str, float]] = {}
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            stack.append(match.group(1))
        elif match.group(0).startswith("</"):
            if stack:
                stack.pop()
        elif stack:
            attrs = dict(_ATTR.findall(match.group(2)))
            if "name" not in attrs or "val" not in attrs:
                continue
            try:
                value = float(attrs["val"])
            except ValueError:
                continue
            value *= _UNITS_TO_METRES.get(attrs.get("unit", "").lower(), 1.0)
            for key in ("/".join(stack), stack[-1]):
                sections.setdefault(key, {})[attrs["name"]] = value
    return sections


def wheel_specs(text: str, source: str = "<string>") -> list[WheelSpec]:
    """Read the four wheels of a car.

    Rim diameters are given in inches and tyre widths in millimetres in TORCS files; units are converted by
    `parse_params`. A unitless rim diameter above 5 is taken as inches, a unitless tyre width above 2 as mm.

    Args:
        text: The XML text.
        source: A name for error messages.

    Returns:
        Four `WheelSpec`, in `WHEEL_SECTIONS` order.

    Raises:
        CarXMLError: If an axle or wheel section or one of its values is missing.
    """
    params = parse_params(text)
    wheels = []
    for section in WHEEL_SECTIONS:
        axle = "Front Axle" if section.startswith("Front") else "Rear Axle"
        try:
            x = params[axle]["xpos"]
            values = params[section]
            y = values["ypos"]
            rim_diameter = values["rim diameter"]
            width = values["tire width"]
            ratio = values["tire height-width ratio"]
        except KeyError as error:
            raise CarXMLError(
                f"{source}: missing {error.args[0]!r} for {section!r}; expected sections {axle!r} (xpos) and "
                f"{section!r} (ypos, rim diameter, tire width, tire height-width ratio)"
            ) from error
        rim_diameter = rim_diameter * 0.0254 if rim_diameter > 5 else rim_diameter
        width = width * 0.001 if width > 2 else width
        rim_radius = rim_diameter / 2
        ride = values.get("ride height", 0.1)
        ride = ride * 0.001 if ride > 2 else ride
        wheels.append(WheelSpec(section, x, y, rim_radius + width * ratio, rim_radius, width, ride))
    return wheels


def load_wheel_specs(path: str | os.PathLike) -> list[WheelSpec]:
    """Read the four wheels from a car's `.xml` file (see `wheel_specs`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"car parameter file {str(path)!r} does not exist")
    return wheel_specs(path.read_text(encoding="latin-1"), source=str(path))


def body_length(text: str) -> float | None:
    """The car's "body length" (or "overall length") in metres from its `Car` section, if present."""
    car = parse_params(text).get("Car", {})
    return car.get("body length", car.get("overall length"))
