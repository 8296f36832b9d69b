"""A small built-in set of short English sentences used as calibration and evaluation text."""

from __future__ import annotations

import hashlib
import json
from typing import Any

TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "A cup of strong coffee makes the morning feel shorter.",
    "The central bank raised interest rates by a quarter of a point.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "She practiced the violin every evening for three years.",
    "The train to Edinburgh was delayed by heavy snow.",
    "Regular exercise lowers the risk of heart disease.",
    "The museum opened a new exhibition of early Roman coins.",
    "Our team shipped the software update on Friday afternoon.",
    "Whales communicate with songs that travel for many miles.",
    "He forgot his umbrella and walked home in the rain.",
    "The recipe calls for two eggs, flour and a pinch of salt.",
    "Volcanic eruptions can cool the climate for several years.",
    "The striker scored twice in the second half of the match.",
    "A good night's sleep improves memory and concentration.",
    "The city council approved a budget for new bicycle lanes.",
    "Ancient sailors navigated by the position of the stars.",
    "The laptop battery lasts about ten hours on a single charge.",
    "Children learn languages faster than most adults do.",
    "The bakery on the corner sells fresh bread before dawn.",
    "Quantum computers use qubits that can hold superpositions.",
    "The river flooded the valley after a week of storms.",
    "Reading novels can help people understand other points of view.",
    "The hotel room had a small balcony overlooking the harbor.",
    "Vaccines train the immune system to recognize a virus.",
    "The stock market fell sharply after the earnings report.",
    "Bees are essential pollinators for many food crops.",
    "The old castle on the hill is said to be haunted.",
    "Compressing a neural network can make it run on a phone.",
    "The library extended its opening hours during exam season.",
    "Mount Everest is the highest mountain above sea level.",
    "They planted tomatoes and basil in the garden last spring.",
)


# Held out from calibration: the functional metric is measured on these, so that a method
# fitted to the calibration activations (GPTQ) is not judged on the data it was fitted to.
HELDOUT: tuple[str, ...] = (
    "The committee will meet again next Tuesday to discuss the proposal.",
    "My grandmother grows roses in her small backyard.",
    "Solar panels convert light into electricity without moving parts.",
    "The orchestra tuned their instruments before the concert began.",
    "He ordered a pizza with mushrooms and olives.",
    "Glaciers in the Alps are melting faster than scientists predicted.",
    "The airline cancelled dozens of flights because of the strike.",
    "A spoonful of honey can soothe a sore throat.",
    "The detective found a hidden letter inside the old piano.",
    "Electric cars are becoming cheaper to buy and to run.",
    "The students built a small robot that can sort recycling.",
    "Fresh snow covered the mountain village overnight.",
    "The new bridge shortens the commute by twenty minutes.",
    "Octopuses can change the color and texture of their skin.",
    "She wrote her first novel while working night shifts at a hospital.",
    "The price of wheat rose after a poor harvest in several countries.",
)


def canonical_bytes(texts: tuple[str, ...] | list[str] = TEXTS) -> bytes:
    """Canonical bytes of a text list: the JSON array, compact, UTF-8 (RFC 8785 for strings)."""
    return json.dumps(list(texts), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def digest(texts: tuple[str, ...] | list[str] = TEXTS) -> str:
    """`sha256:<hex>` of the canonical text list."""
    return "sha256:" + hashlib.sha256(canonical_bytes(texts)).hexdigest()


def subject(
    texts: tuple[str, ...] | list[str] = TEXTS, name: str = "calibration-texts"
) -> dict[str, Any]:
    """The in-toto subject naming a text set (default: the calibration texts)."""
    return {
        "name": name,
        "digest": {"sha256": digest(texts).removeprefix("sha256:")},
    }
