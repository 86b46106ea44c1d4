"""The five safety-data categories and the value every categorizer returns.

- ``EHD`` explicit harmful data: the request is harmful on its face; its words name the harm
  (weapons, drugs, violence, slurs) and its intent is plainly to cause it.
- ``IHD`` implicit harmful data: ordinary words, harmful intent; nothing in the vocabulary is
  alarming, but answering as asked would help someone hurt, cheat or demean.
- ``MHD`` mixed harmful data: harmful wording *and* a harmful goal woven through an otherwise
  reasonable request, so part of it deserves help and part does not.
- ``OTHER``: risky in some other way (sensitive opinions, privacy, medical or legal stakes) without
  a clear harmful request.
- ``NONE``: no risk; an ordinary request (the authors' label "No risk").
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = ("EHD", "IHD", "MHD", "OTHER", "NONE")
HARMFUL: tuple[str, ...] = ("EHD", "IHD", "MHD")

#: The authors' spelling of a label -> ours.
LABEL_ALIASES = {"no risk": "NONE", "none": "NONE", "other": "OTHER"}


def canonical_category(label: str) -> str | None:
    """Our spelling of ``label`` (``"No risk"`` -> ``"NONE"``), or ``None`` when unknown."""
    text = str(label).strip()
    if text.upper() in CATEGORIES:
        return text.upper()
    return LABEL_ALIASES.get(text.lower())


@dataclass(frozen=True)
class Categorized:
    """One categorizer verdict: a category from :data:`CATEGORIES` and a confidence in [0, 1]."""

    category: str
    confidence: float
