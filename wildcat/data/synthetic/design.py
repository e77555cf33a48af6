"""The class design of the synthetic dataset: which look (shape, texture, colour) is the emblem,
the base and the mark of each class, and which classes share a part (negative evidence, paper
Section 3.3). The code of the looks and the rules of the search: docs/synthetic.md, "What an
image contains" and "Why each feature is there".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wildcat.data.synthetic.spec import CLASS_NAMES, COLOURS, SHAPES, TEXTURES, SyntheticSpecError

__all__ = ["Part", "ClassDesign", "class_design", "codewords"]


@dataclass(frozen=True)
class Part:
    """One part look: a shape filled with a texture in a colour (indices into the tables)."""

    shape: int
    texture: int
    colour: int

    def describe(self) -> str:
        """``"<colour> <texture> <shape>"``, as in the design table of docs/synthetic.md."""
        return f"{list(COLOURS)[self.colour]} {TEXTURES[self.texture]} {SHAPES[self.shape]}"


@dataclass(frozen=True)
class ClassDesign:
    """The parts of every class.

    Attributes:
        classes: class names, in index order.
        emblem, base, mark: ``(C,)`` part ids per class; ``parts[emblem[c]]`` is its look.
        parts: every part look used by some class (ids index this tuple).
        shared_pairs: ``(y, x)`` class pairs where ``base[x] == emblem[y]``.
        lone_parts: ids of the parts that may be drawn alone (bases and marks that are nobody's
            emblem).
        distractor_looks: ``(K, 3)`` shape, texture, colour of every look that no class part has.
    """

    classes: tuple[str, ...]
    emblem: tuple[int, ...]
    base: tuple[int, ...]
    mark: tuple[int, ...]
    parts: tuple[Part, ...]
    shared_pairs: tuple[tuple[int, int], ...]
    lone_parts: tuple[int, ...]
    distractor_looks: np.ndarray = field(repr=False, compare=False)

    def class_parts(self, c: int, modality: int) -> tuple[int, ...]:
        """Part ids that an object of class ``c`` shows in ``modality`` (0 single, 1 pair)."""
        return (self.emblem[c],) if modality == 0 else (self.base[c], self.mark[c])

    def to_dict(self) -> dict[str, Any]:
        """The design as JSON-ready values (the ``design`` entry of ``synthetic.json``)."""
        return {
            "classes": list(self.classes),
            "parts": [{"id": i, "shape": SHAPES[p.shape], "texture": TEXTURES[p.texture],
                       "colour": list(COLOURS)[p.colour]} for i, p in enumerate(self.parts)],
            "class_parts": {name: {"emblem": self.emblem[c], "base": self.base[c], "mark": self.mark[c]}
                            for c, name in enumerate(self.classes)},
            "shared_pairs": [{"emblem_of": self.classes[y], "base_of": self.classes[x]} for y, x in self.shared_pairs],
            "lone_parts": list(self.lone_parts),
        }


def codewords() -> list[Part]:
    """The 40 looks ``(shape s, texture t, colour (s + 3t) mod 8)``: any two differ in at least
    two of shape, texture, colour (for a fixed texture the colour is a bijection of the shape,
    for a fixed shape ``3t mod 8`` is injective on ``t < 5``), in a fixed shuffled order."""
    words = [Part(s, t, (s + 3 * t) % len(COLOURS)) for s in range(len(SHAPES)) for t in range(len(TEXTURES))]
    order = np.random.Generator(np.random.PCG64(20170721)).permutation(len(words))
    return [words[i] for i in order]


def _all_differ(*looks: Part) -> bool:
    """Whether the looks differ pairwise in shape, texture *and* colour."""
    return all(len({getattr(p, a) for p in looks}) == len(looks) for a in ("shape", "texture", "colour"))


def _search_triples(num_classes: int, shares: dict[int, int]) -> list[tuple[Part, Part, Part]]:
    """``(emblem, base, mark)`` per class, by a depth-first search over :func:`codewords`: the
    first assignment in which the three parts of each class differ pairwise in shape, texture
    and colour, no look serves two classes except a shared base, and the base of class ``x``
    is the emblem of class ``shares[x]``."""
    words = codewords()
    chosen: list[tuple[Part, Part, Part]] = []
    used: set[Part] = set()

    def search(c: int) -> bool:
        if c == num_classes:
            return True
        free = [w for w in words if w not in used]
        if c in shares:
            base = chosen[shares[c]][0]
            options = [(e, base, m) for e in free for m in free if e != m]
        else:
            options = ((e, b, m) for e in free for b in free for m in free if len({e, b, m}) == 3)
        for triple in options:
            if not _all_differ(*triple):
                continue
            chosen.append(triple)
            new = {p for p in triple if p not in used}
            used.update(new)
            if search(c + 1):
                return True
            used.difference_update(new)
            chosen.pop()
        return False

    if not search(0):  # pragma: no cover - the argument checks keep this feasible
        raise SyntheticSpecError(f"no class design for num_classes={num_classes}, num_shared_pairs={len(shares)}")
    return chosen


@functools.cache
def class_design(num_classes: int = 8, num_shared_pairs: int = 3) -> ClassDesign:
    """The parts of each class (deterministic: depends on the arguments and the generator version).

    Each class gets an emblem, a base and a mark that differ pairwise in shape, texture and
    colour; any two distinct parts of the design differ in at least two of the three. For the
    first ``num_shared_pairs`` pairs ``(2j, 2j + 1)``, the base of ``2j + 1`` is the emblem of
    ``2j``. A depth-first search over the code words (:func:`codewords`) picks the parts.

    Returns:
        The :class:`ClassDesign`.
    """
    shares = {2 * j + 1: 2 * j for j in range(num_shared_pairs)}
    chosen = _search_triples(num_classes, shares)
    parts: list[Part] = []
    ids: dict[Part, int] = {}
    for triple in chosen:
        for p in triple:
            if p not in ids:
                ids[p] = len(parts)
                parts.append(p)
    emblem = tuple(ids[t[0]] for t in chosen)
    base = tuple(ids[t[1]] for t in chosen)
    mark = tuple(ids[t[2]] for t in chosen)
    lone = tuple(sorted({*base, *mark} - set(emblem)))
    part_set = set(parts)
    distractors = np.array([(s, t, c) for s in range(len(SHAPES)) for t in range(len(TEXTURES))
                            for c in range(len(COLOURS)) if Part(s, t, c) not in part_set], dtype=np.int64)
    return ClassDesign(
        classes=CLASS_NAMES[:num_classes], emblem=emblem, base=base, mark=mark, parts=tuple(parts),
        shared_pairs=tuple((y, x) for x, y in sorted(shares.items())), lone_parts=lone,
        distractor_looks=distractors,
    )
