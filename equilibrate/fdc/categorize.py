"""Two ways to put a prompt into a safety-data category.

- :class:`EmbeddingCategorizer`: sentence embeddings plus character n-grams, two logistic
  regressions blended, trained on the authors' BeaverTails labels. Fast, seeded, saved and reloaded.
- :class:`LLMJudgeCategorizer`: asks a chat model two yes/no questions (harmful *content*? harmful
  *intent*?) and derives the category from the two answers.

Both expose ``categorize(prompts) -> list[Categorized]``. :func:`evaluate_categories` scores
either against reference labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from equilibrate.errors import ConfigError, DataFormatError
from equilibrate.fdc.categories import CATEGORIES, HARMFUL, Categorized, canonical_category
from equilibrate.fdc.embed import DEFAULT_ENCODER, get_encoder
from equilibrate.paths import cache_dir

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Reading a yes/no answer
# --------------------------------------------------------------------------------------------

_YES = r"yes|yeah|yep|yup|true|correct|affirmative|it does|there is|definitely|certainly"
_NO = (
    r"no|nope|not|false|incorrect|negative|it does not|it doesn't|doesn't|does not|there is no|"
    r"none|never"
)
_UNSURE = r"not sure|unsure|can't tell|cannot tell|can not tell|don't know|do not know|maybe"
# Alternatives are tried left to right at each position: "unsure" before "no" ("not sure"), and
# "no" before "yes" ("it does not" must not read as "it does").
_ANSWER = re.compile(rf"\b(?:(?P<unsure>{_UNSURE})|(?P<no>{_NO})|(?P<yes>{_YES}))\b", re.IGNORECASE)
_ECHO = re.compile(
    r"\b(?:contains?|contained|intends?|intended|includes?|wants? to|aims? to|"
    r"is (?:harmful|dangerous|offensive))\b",
    re.IGNORECASE,
)
_LABELLED = re.compile(r"\banswer\s*[:=\-]\s*\**\s*(?P<word>yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str | None) -> bool | None:
    """Read a model's answer to a yes/no question: ``True``, ``False`` or ``None`` (unreadable).

    Rules, in order: an explicit ``Answer: yes/no`` wins; otherwise the first yes-like or no-like
    word decides (``"Yes."``, ``"**No**, because..."``, ``"It does not."``, ``"yep"``). Without
    either, a sentence that restates the question's claim affirms it (``"The person writing it
    intends to harm"`` -> ``True``; negations such as ``"contains no"`` were caught before).
    Text with none of these, text opening with doubt (``"Not sure"``, ``"maybe"``), empty text
    and ``None`` give ``None``. Case, punctuation and markdown are ignored.
    """
    if not text:
        return None
    cleaned = text.replace("*", " ").replace("_", " ")
    labelled = _LABELLED.search(cleaned)
    if labelled:
        return labelled.group("word").lower() == "yes"
    match = _ANSWER.search(cleaned)
    if match is not None:
        return None if match.group("unsure") is not None else match.group("yes") is not None
    # No yes/no word and no negation anywhere: an answer that restates the question's claim
    # ("The person writing it intends to harm") affirms it.
    return True if _ECHO.search(cleaned) else None


def category_from_answers(content: bool | None, intent: bool | None) -> Categorized:
    """The category implied by the two answers, with a confidence that drops for missing ones.

    content and intent -> MHD; content only -> EHD; intent only -> IHD; neither -> NONE. A missing
    answer counts as "no" and halves the confidence (1.0 -> 0.5 -> 0.25). The two questions cannot
    produce ``OTHER``.
    """
    has_content = bool(content)
    has_intent = bool(intent)
    if has_content and has_intent:
        category = "MHD"
    elif has_content:
        category = "EHD"
    elif has_intent:
        category = "IHD"
    else:
        category = "NONE"
    missing = (content is None) + (intent is None)
    return Categorized(category, 0.5**missing)


CONTENT_QUESTION = (
    "Read the message between the lines of dashes.\n-----\n{prompt}\n-----\n"
    "Question: do the words of this message themselves contain harmful content, such as "
    "violence, weapons, drugs, crime, sexual content or slurs? Reply with one word: yes or no."
)
INTENT_QUESTION = (
    "Read the message between the lines of dashes.\n-----\n{prompt}\n-----\n"
    "Question: does the person writing it intend to harm, deceive, cheat or demean someone, "
    "even if the words sound ordinary? Reply with one word: yes or no."
)


@dataclass
class JudgeAnswers:
    """Raw answers of the LLM judge for one prompt (kept for inspection)."""

    prompt: str
    content_answer: str
    intent_answer: str
    content: bool | None
    intent: bool | None


class LLMJudgeCategorizer:
    """Categorizes prompts by asking a chat model two yes/no questions per prompt.

    Args:
        model, tokenizer, profile: the chat model (see :mod:`equilibrate.profiles`).
        max_new_tokens: answer length for each question (tokens).
        cache: a JSONL generation cache (see :func:`equilibrate.generate.generate`); with it,
            ``model_key`` names the model.

    After :meth:`categorize`, ``unparseable`` counts answers that were neither yes nor no, and
    ``answers`` holds every raw answer.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        profile: Any,
        *,
        max_new_tokens: int = 8,
        batch_size: int = 16,
        cache: str | Path | None = None,
        model_key: str | None = None,
    ) -> None:
        from equilibrate.generate import GenerationSettings

        self.model = model
        self.tokenizer = tokenizer
        self.profile = profile
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size)
        self.cache = cache
        self.model_key = model_key
        self.unparseable = 0
        self.answers: list[JudgeAnswers] = []

    def _ask(self, questions: list[str]) -> list[str]:
        from equilibrate.generate import generate

        return generate(
            self.model,
            self.tokenizer,
            questions,
            self.settings,
            profile=self.profile,
            cache=self.cache,
            model_key=self.model_key,
        )

    def categorize(self, prompts: Sequence[str]) -> list[Categorized]:
        """One :class:`Categorized` per prompt (two generations per prompt)."""
        prompts = list(prompts)
        content_raw = self._ask([CONTENT_QUESTION.format(prompt=p) for p in prompts])
        intent_raw = self._ask([INTENT_QUESTION.format(prompt=p) for p in prompts])
        self.answers = []
        self.unparseable = 0
        out = []
        for prompt, c_text, i_text in zip(prompts, content_raw, intent_raw, strict=True):
            content, intent = parse_yes_no(c_text), parse_yes_no(i_text)
            self.unparseable += (content is None) + (intent is None)
            self.answers.append(JudgeAnswers(prompt, c_text, i_text, content, intent))
            out.append(category_from_answers(content, intent))
        log.info(
            "LLM judge: %d prompts, %d of %d answers unparseable",
            len(prompts),
            self.unparseable,
            2 * len(prompts),
        )
        return out


# --------------------------------------------------------------------------------------------
# Embedding classifier
# --------------------------------------------------------------------------------------------


@dataclass
class EmbeddingCategorizer:
    """Sentence embeddings + character n-grams, two class-balanced logistic regressions blended.

    The probability of each class is ``embedding_weight * p_embedding + (1 - embedding_weight) *
    p_chars``: the first model reads all-MiniLM-L6-v2 vectors (384 floats), the second TF-IDF
    character 2-5-grams (inside word boundaries), which pick up the explicit vocabulary that
    separates EHD from IHD. Deterministic given ``seed``.

    Attributes:
        encoder: sentence encoder name (see :func:`equilibrate.fdc.embed.encoder_path`).
        embedding_weight: blend weight of the embedding model, in [0, 1].
        c_embedding, c_chars: inverse regularisation strengths of the two regressions (> 0).
        seed: random state of both regressions.
    """

    encoder: str = DEFAULT_ENCODER
    embedding_weight: float = 0.75
    c_embedding: float = 1.0
    c_chars: float = 4.0
    seed: int = 0
    classes_: list[str] = field(default_factory=list)
    _embed_model: Any = None
    _char_model: Any = None
    _vectorizer: Any = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.embedding_weight <= 1.0:
            raise ConfigError(
                "embedding_weight", f"expected a number in [0, 1], got {self.embedding_weight!r}"
            )
        for name in ("c_embedding", "c_chars"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, f"expected a number > 0, got {getattr(self, name)!r}")

    def _embed(self, prompts: Sequence[str]) -> np.ndarray:
        return get_encoder(self.encoder).encode(list(prompts))

    def fit(self, prompts: Sequence[str], labels: Sequence[str]) -> EmbeddingCategorizer:
        """Train on ``prompts`` with reference ``labels`` (any subset of :data:`CATEGORIES`)."""
        labels = [canonical_category(x) or x for x in labels]
        unknown = sorted(set(labels) - set(CATEGORIES))
        if unknown:
            raise ConfigError("labels", f"unknown categories {unknown}; expected {CATEGORIES}")
        if len(set(labels)) < 2:
            raise ConfigError("labels", "need at least two different categories to train")
        y = np.array(labels)
        self._embed_model = LogisticRegression(
            C=self.c_embedding, class_weight="balanced", max_iter=3000, random_state=self.seed
        ).fit(self._embed(prompts), y)
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True
        ).fit(list(prompts))
        self._char_model = LogisticRegression(
            C=self.c_chars, class_weight="balanced", max_iter=3000, random_state=self.seed
        ).fit(self._vectorizer.transform(list(prompts)), y)
        self.classes_ = [str(c) for c in self._embed_model.classes_]
        log.info("trained embedding categorizer on %d prompts, classes %s", len(y), self.classes_)
        return self

    def predict_proba(self, prompts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(len(prompts), len(classes_))``, rows summing to 1."""
        if self._embed_model is None:
            raise ConfigError("categorizer", "not trained; call fit() or load() first")
        prompts = list(prompts)
        if not prompts:
            return np.zeros((0, len(self.classes_)))
        w = self.embedding_weight
        p_embed = self._embed_model.predict_proba(self._embed(prompts))
        p_chars = self._char_model.predict_proba(self._vectorizer.transform(prompts))
        return w * p_embed + (1 - w) * p_chars

    def categorize(self, prompts: Sequence[str]) -> list[Categorized]:
        """The most probable category of each prompt and its blended probability."""
        proba = self.predict_proba(prompts)
        best = proba.argmax(axis=1)
        return [Categorized(self.classes_[k], float(proba[i, k])) for i, k in enumerate(best)]

    def save(self, folder: str | Path) -> Path:
        """Write the trained categorizer to ``folder`` (``model.joblib`` + ``settings.json``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"embed": self._embed_model, "chars": self._char_model, "vec": self._vectorizer},
            folder / "model.joblib",
        )
        settings = {
            "encoder": self.encoder,
            "embedding_weight": self.embedding_weight,
            "c_embedding": self.c_embedding,
            "c_chars": self.c_chars,
            "seed": self.seed,
            "classes": self.classes_,
        }
        (folder / "settings.json").write_text(json.dumps(settings, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddingCategorizer:
        """Read a categorizer written by :meth:`save`."""
        folder = Path(folder)
        settings_file = folder / "settings.json"
        if not settings_file.is_file():
            raise FileNotFoundError(f"{settings_file}: no saved categorizer here")
        settings = json.loads(settings_file.read_text())
        classes = settings.pop("classes")
        obj = cls(**settings)
        parts = joblib.load(folder / "model.joblib")
        obj._embed_model, obj._char_model, obj._vectorizer = (
            parts["embed"],
            parts["chars"],
            parts["vec"],
        )
        obj.classes_ = classes
        return obj


# --------------------------------------------------------------------------------------------
# Reference labels, splits, scores
# --------------------------------------------------------------------------------------------


def labelled_prompts(
    rows: Sequence[dict] | None = None, dedup: bool = True
) -> tuple[list[str], list[str]]:
    """Prompts and our spelling of the authors' labels from ``beavertails_fdc`` (or ``rows``).

    With ``dedup`` (default) a prompt that appears several times (same text after
    ``normalize_prompt``) is kept once, with its most frequent label (the first seen on a tie), so
    no prompt can sit on both sides of a train/validation split.
    """
    from equilibrate import data

    if rows is None:
        rows = data.load("beavertails_fdc")
    groups: dict[str, list[tuple[str, str]]] = {}
    for i, row in enumerate(rows, start=1):
        label = canonical_category(row.get("category", ""))
        if label is None:
            raise DataFormatError(
                "beavertails_fdc", i, "category", f"unknown label {row.get('category')!r}"
            )
        key = data.normalize_prompt(row["prompt"]) if dedup else str(i)
        groups.setdefault(key, []).append((row["prompt"], label))
    prompts, labels = [], []
    for members in groups.values():
        counts = Counter(label for _, label in members)
        top = max(counts.values())
        label = next(lab for _, lab in members if counts[lab] == top)
        prompts.append(members[0][0])
        labels.append(label)
    return prompts, labels


def label_conflicts(rows: Sequence[dict] | None = None) -> tuple[int, int]:
    """``(repeated, conflicting)``: prompts the authors labelled more than once, and how many of
    those got different labels (a direct view of the labels' noise)."""
    from equilibrate import data

    if rows is None:
        rows = data.load("beavertails_fdc")
    groups: dict[str, set[str]] = {}
    counts: Counter = Counter()
    for row in rows:
        key = data.normalize_prompt(row["prompt"])
        counts[key] += 1
        groups.setdefault(key, set()).add(canonical_category(row["category"]) or "?")
    repeated = [k for k, n in counts.items() if n > 1]
    return len(repeated), sum(len(groups[k]) > 1 for k in repeated)


def validation_split(
    labels: Sequence[str], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Stratified, seeded train/validation row indices over ``labels``."""
    if not 0 < val_fraction < 1:
        raise ConfigError("val_fraction", f"expected a number in (0, 1), got {val_fraction!r}")
    idx = np.arange(len(labels))
    train, val = train_test_split(
        idx, test_size=val_fraction, stratify=list(labels), random_state=seed
    )
    return sorted(int(i) for i in train), sorted(int(i) for i in val)


@dataclass
class CategorizerReport:
    """Agreement of predicted categories with reference labels.

    Attributes:
        n: rows scored.
        accuracy: share of exact matches.
        macro_f1: unweighted mean of the per-class F1 over ``labels``.
        confusion: counts, rows = reference, columns = prediction (may hold extra columns for
            predictions outside ``labels``).
        labels: the classes scored.
    """

    n: int
    accuracy: float
    macro_f1: float
    confusion: pd.DataFrame
    labels: tuple[str, ...]

    def summary(self) -> str:
        """One line: n, accuracy, macro-F1."""
        return (
            f"{len(self.labels)} classes, n={self.n}: accuracy {self.accuracy:.3f}, "
            f"macro-F1 {self.macro_f1:.3f}"
        )


def evaluate_categories(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = CATEGORIES
) -> CategorizerReport:
    """Score ``predicted`` against ``truth`` on the rows whose reference is in ``labels``."""
    keep = [i for i, t in enumerate(truth) if t in labels]
    t = [truth[i] for i in keep]
    p = [predicted[i] for i in keep]
    columns = list(labels) + sorted(set(p) - set(labels))
    confusion = pd.crosstab(
        pd.Categorical(t, categories=list(labels)),
        pd.Categorical(p, categories=columns),
        rownames=["reference"],
        colnames=["predicted"],
        dropna=False,
    )
    return CategorizerReport(
        n=len(t),
        accuracy=float(accuracy_score(t, p)) if t else float("nan"),
        macro_f1=float(f1_score(t, p, labels=list(labels), average="macro", zero_division=0)),
        confusion=confusion,
        labels=tuple(labels),
    )


def trained_categorizer(
    labels: Sequence[str] = CATEGORIES,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    encoder: str = DEFAULT_ENCODER,
) -> tuple[EmbeddingCategorizer, CategorizerReport]:
    """The book's embedding categorizer and its score on a held-out validation split.

    Trains on the stratified ``1 - val_fraction`` share of the BeaverTails rows whose label is in
    ``labels`` (seeded), scores on the rest, and caches the trained model under
    ``cache_dir("fdc", "categorizer-<hash>")`` keyed by the data and the settings.
    """
    prompts, refs = labelled_prompts()
    rows = [i for i, r in enumerate(refs) if r in labels]
    prompts = [prompts[i] for i in rows]
    refs = [refs[i] for i in rows]
    train, val = validation_split(refs, val_fraction, seed)
    key_src = json.dumps(
        {
            "p": prompts,
            "r": refs,
            "labels": list(labels),
            "v": val_fraction,
            "s": seed,
            "e": encoder,
            "b": get_encoder(encoder).backend,
            "version": 2,
        }
    )
    folder = cache_dir("fdc", "categorizer-" + hashlib.sha256(key_src.encode()).hexdigest()[:16])
    if (folder / "settings.json").is_file():
        categorizer = EmbeddingCategorizer.load(folder)
    else:
        categorizer = EmbeddingCategorizer(encoder=encoder, seed=seed).fit(
            [prompts[i] for i in train], [refs[i] for i in train]
        )
        categorizer.save(folder)
    predicted = [c.category for c in categorizer.categorize([prompts[i] for i in val])]
    report = evaluate_categories([refs[i] for i in val], predicted, tuple(labels))
    log.info("embedding categorizer on validation: %s", report.summary())
    return categorizer, report


__all__ = [
    "HARMFUL",
    "CategorizerReport",
    "EmbeddingCategorizer",
    "LLMJudgeCategorizer",
    "category_from_answers",
    "evaluate_categories",
    "label_conflicts",
    "labelled_prompts",
    "parse_yes_no",
    "trained_categorizer",
    "validation_split",
]
