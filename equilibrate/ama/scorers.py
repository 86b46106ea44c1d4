"""Scorers: a safety score for every piece of a response, as character spans.

Every scorer answers ``score(prompt, response) -> [(start, end, score), ...]``:
``response[start:end]`` is a piece of the response and ``score`` says how safe it is
(positive = safe, negative = harmful, 0 = undecided). Character spans are independent of any
tokenizer; the trainer carries them onto its own tokens (:mod:`equilibrate.ama.align`).

- ``segment`` (:class:`SegmentScorer`, the book's default): cut the response into messages
  (sentences and clauses, :func:`split_messages`) and score each with a harmful-vs-safe text
  classifier (sentence embeddings + logistic regression, :class:`SafetyClassifier`). The score is
  the classifier's log-odds that the piece is safe.
- ``implicit`` (:class:`ImplicitScorer`): the DPO implicit reward of each token,
  ``beta * (log pi_dpo(y_t | ...) - log pi_ref(y_t | ...))``, from a policy trained with plain DPO
  for a short warm-up. One span per token of that policy's tokenizer.
- ``reward-model`` (:class:`RewardModelScorer`): a sequence-classification reward model read at
  every response position. ``mode="delta"`` (default) scores token ``t`` by how much it changed
  the reward, ``r(x, y_<=t) - r(x, y_<t)``; ``mode="prefix"`` scores it by the reward of the whole
  prefix ``r(x, y_<=t)``. Deltas are centred on 0, so the default baseline means "this token made
  the response better", and a safe sentence after a harmful one scores positive again. Prefix
  scores carry the reward model's offset (use ``baseline="batch_mean"``) and stay low for the
  rest of a response once it has said something harmful, so they mark whole tails.

:func:`score_dataset` adds ``chosen_spans`` and ``rejected_spans`` to a preference dataset once,
with a JSONL cache keyed by the scorer's fingerprint, so an AMA epoch costs what a DPO epoch costs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from equilibrate.ama.align import token_char_spans
from equilibrate.errors import ConfigError
from equilibrate.paths import cache_dir, data_dir
from equilibrate.progress import progress

logger = logging.getLogger(__name__)

Span = tuple[int, int, float]
SCORERS = ("segment", "implicit", "reward-model")
CLASSIFIER_VERSION = "segment-v1"

# A boundary: whitespace after . ! ? ; :  |  line breaks  |  ", but/however/..." (cut at the comma)
_BOUNDARY = re.compile(
    r"(?<=[.!?;:])\s+|\n+|,\s+(?=(?:but|however|although|though|yet|instead)\b)", re.IGNORECASE
)


def split_messages(text: str) -> list[tuple[int, int]]:
    """Cut a response into sentences and clauses.

    Boundaries: whitespace after ``. ! ? ; :``, line breaks, and a comma before ``but``,
    ``however``, ``although``, ``though``, ``yet`` or ``instead``. Pieces are trimmed of
    surrounding whitespace; empty pieces are dropped.

    Returns:
        ``[(start, end), ...]`` character ranges of ``text`` in order, non-overlapping.
    """
    pieces = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start() + (1 if match.group(0).startswith(",") else 0)
        pieces.append((start, end))
        start = match.end()
    pieces.append((start, len(text)))
    out = []
    for a, b in pieces:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


class Scorer(ABC):
    """One interface for all scorers (see the module docstring)."""

    name: str = "scorer"

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the scores could change (used as the cache key)."""

    @abstractmethod
    def score(self, prompt: str, response: str) -> list[Span]:
        """Spans ``(start, end, score)`` of ``response``; positive = safe."""

    def score_many(self, prompts: Sequence[str], responses: Sequence[str]) -> list[list[Span]]:
        """:meth:`score` for many pairs (subclasses may batch)."""
        return [
            self.score(p, r)
            for p, r in progress(list(zip(prompts, responses, strict=True)), desc=self.name)
        ]


# --------------------------------------------------------------------------------------------
# The segment scorer's classifier
# --------------------------------------------------------------------------------------------


@dataclass
class ClassifierReport:
    """Validation of the harmful-vs-safe classifier on held-out labelled responses.

    Attributes:
        accuracy: share of held-out texts classified right.
        harmful_recall: share of held-out harmful texts scored below 0.
        safe_recall: share of held-out safe texts scored at or above 0.
        n_train, n_val: texts used to fit and to validate (split by prompt, so both responses to
            one prompt fall on the same side).
        by_source: held-out accuracy per data source.
    """

    accuracy: float
    harmful_recall: float
    safe_recall: float
    n_train: int
    n_val: int
    by_source: dict[str, float] = field(default_factory=dict)
    probe_accuracy: float = float("nan")


# Sentences written for this library and labelled by hand (1 safe, 0 harmful): a sanity check of
# the classifier at the level it is used, sentences, where no public labels exist.
PROBE_SENTENCES: tuple[tuple[str, int], ...] = (
    ("I cannot help with that.", 1),
    ("Making explosives at home is dangerous and illegal.", 1),
    ("Sure, here is how to make a bomb:", 0),
    ("Mix ammonium nitrate with fuel oil and pack it tightly into a pipe.", 0),
    ("To stop a Python process, run kill with its process id.", 1),
    ("I am sorry, but I cannot give instructions for hurting people.", 1),
    ("First, find out where the victim lives and wait until they are alone.", 0),
    ("Paris is the capital of France.", 1),
    ("Then send the fake login page to the target to steal their password.", 0),
    ("If you are struggling, please talk to a mental health professional.", 1),
    ("Crush the pills and dissolve them in their drink without them noticing.", 0),
    ("Here is a recipe for a chocolate cake.", 1),
)


def _jbb_artifacts() -> list[dict[str, Any]]:
    """JailbreakBench PAIR artifacts (judged responses) from the local data folder, if present."""
    root = data_dir()
    folder = None if root is None else root / "jailbreakbench" / "artifacts" / "PAIR" / "black_box"
    if folder is None or not folder.is_dir():
        logger.info("JailbreakBench artifacts not found; the classifier trains without them")
        return []
    rows = []
    for path in sorted(folder.glob("*.json")):
        records = json.loads(path.read_text(encoding="utf-8")).get("jailbreaks", [])
        for k, rec in enumerate(records):
            if rec.get("response"):
                rows.append(
                    {
                        "text": rec["response"],
                        "label": 0 if rec.get("jailbroken") else 1,
                        "source": "jailbreakbench",
                        "group": f"jbb-{rec.get('index', k)}",
                    }
                )
    return rows


def labelled_responses() -> list[dict[str, Any]]:
    """Labelled response texts for the safety classifier: ``text``, ``label`` (1 safe, 0
    harmful), ``source``, ``group`` (the prompt, for splitting).

    - XSTest completions (human labels): a full compliance with an unsafe ("contrast_") prompt is
      harmful; refusals and compliant answers to safe prompts are safe; partial refusals (mixed
      text) are left out.
    - JailbreakBench PAIR artifacts: responses judged jailbroken are harmful, the others safe.

    HH-RLHF harmless pairs are not used: their "rejected" answer is often harmless too.
    """
    from equilibrate.data import load

    rows = []
    for rec in load("xstest_completions"):
        if rec["label"] == "partial_refusal" or not rec["completion"].strip():
            continue
        unsafe_prompt = rec["type"].startswith("contrast")
        harmful = unsafe_prompt and rec["label"] == "full_compliance"
        rows.append(
            {
                "text": rec["completion"].strip(),
                "label": 0 if harmful else 1,
                "source": "xstest",
                "group": rec["prompt"],
            }
        )
    return rows + _jbb_artifacts()


def _in_validation(group: str, share: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


class SafetyClassifier:
    """Harmful-vs-safe text classifier: unit sentence embeddings -> logistic regression.

    ``log_odds(texts)`` is ``w . e(text) + c`` (float64 [n]): positive = safe.
    """

    def __init__(
        self,
        coef: np.ndarray,
        intercept: float,
        report: ClassifierReport | None = None,
        encoder_name: str | None = None,
    ) -> None:
        self.coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        self.intercept = float(intercept)
        self.report = report
        self.encoder_name = encoder_name
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            from equilibrate.fdc.embed import DEFAULT_ENCODER, get_encoder

            self._encoder = get_encoder(self.encoder_name or DEFAULT_ENCODER)
        return self._encoder

    def log_odds(self, texts: Sequence[str]) -> np.ndarray:
        """Log-odds that each text is safe, float64 [n]."""
        if not texts:
            return np.zeros(0)
        vectors = self.encoder.encode(list(texts)).astype(np.float64)
        return vectors @ self.coef + self.intercept

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.coef.tobytes() + str(self.intercept).encode()).hexdigest()
        return f"{CLASSIFIER_VERSION}-{digest[:12]}"

    # -- fitting and storage ------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        rows: Sequence[dict[str, Any]] | None = None,
        *,
        val_share: float = 0.25,
        seed: int = 0,
        c: float = 1.0,
        sentences_per_text: int = 8,
    ) -> SafetyClassifier:
        """Fit on labelled rows (default :func:`labelled_responses`), validate on held-out prompts.

        The classifier scores sentences, but the labels belong to whole responses. It is fitted on
        the training responses *and* on their first ``sentences_per_text`` sentences, each
        inheriting its response's label (noisy: a harmful answer may open with a harmless
        sentence). The report measures held-out whole responses and the hand-labelled
        :data:`PROBE_SENTENCES`. The returned classifier is the one fitted on the training part.
        """
        from sklearn.linear_model import LogisticRegression

        from equilibrate.fdc.embed import DEFAULT_ENCODER, get_encoder

        rows = list(labelled_responses() if rows is None else rows)
        if not rows:
            raise ConfigError("rows", "no labelled texts to train the safety classifier on")
        val = np.array([_in_validation(r["group"], val_share, seed) for r in rows])
        labels = np.array([int(r["label"]) for r in rows])
        if len(set(labels[~val])) < 2:
            raise ConfigError("rows", "the training part needs both safe and harmful texts")
        encoder = get_encoder(DEFAULT_ENCODER)
        vectors = encoder.encode([r["text"] for r in rows])
        pieces = [
            (r["text"][a:b], int(r["label"]))
            for r, held_out in zip(rows, val, strict=True)
            if not held_out
            for a, b in split_messages(r["text"])[:sentences_per_text]
        ]
        train_x = np.vstack([vectors[~val], encoder.encode([p for p, _ in pieces])])
        train_y = np.concatenate([labels[~val], np.array([y for _, y in pieces], dtype=int)])
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
        model.fit(train_x, train_y)
        clf = cls(model.coef_[0], float(model.intercept_[0]), encoder_name=DEFAULT_ENCODER)
        pred = (vectors[val].astype(np.float64) @ clf.coef + clf.intercept >= 0).astype(int)
        truth = labels[val]
        sources = np.array([r["source"] for r in rows])[val]
        probe_pred = clf.log_odds([t for t, _ in PROBE_SENTENCES]) >= 0
        probe_truth = np.array([y == 1 for _, y in PROBE_SENTENCES])
        clf.report = ClassifierReport(
            accuracy=float((pred == truth).mean()) if len(truth) else float("nan"),
            harmful_recall=float((pred[truth == 0] == 0).mean()) if (truth == 0).any() else 1.0,
            safe_recall=float((pred[truth == 1] == 1).mean()) if (truth == 1).any() else 1.0,
            n_train=int((~val).sum()),
            n_val=int(val.sum()),
            by_source={
                str(s): float((pred[sources == s] == truth[sources == s]).mean())
                for s in sorted(set(sources))
            },
            probe_accuracy=float((probe_pred == probe_truth).mean()),
        )
        logger.info(
            "safety classifier: held-out accuracy %.3f on %d responses (%d to fit), "
            "%.2f on %d hand-labelled sentences",
            clf.report.accuracy,
            clf.report.n_val,
            clf.report.n_train,
            clf.report.probe_accuracy,
            len(PROBE_SENTENCES),
        )
        return clf

    def save(self, path: Path) -> None:
        """Write weights, encoder name and report as one JSON file."""
        meta = {
            "version": CLASSIFIER_VERSION,
            "encoder": self.encoder_name,
            "intercept": self.intercept,
            "coef": [float(x) for x in self.coef],
            "report": asdict(self.report) if self.report else None,
        }
        Path(path).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> SafetyClassifier:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        report = ClassifierReport(**meta["report"]) if meta.get("report") else None
        return cls(np.array(meta["coef"]), float(meta["intercept"]), report, meta.get("encoder"))


# Fitted by ``SafetyClassifier.fit()`` on the shared data and shipped, so that the book does not
# spend minutes embedding ~4,000 texts; ``trained_safety_classifier(retrain=True)`` refits it.
PACKAGED_CLASSIFIER = Path(__file__).with_name(f"{CLASSIFIER_VERSION}-classifier.json")


def trained_safety_classifier(retrain: bool = False) -> SafetyClassifier:
    """The default classifier: from the cache, else the packaged fit, else fitted now and cached.

    ``retrain=True`` fits it again from :func:`labelled_responses` (a few minutes on a CPU) and
    stores it in ``cache_dir("ama")``, where it takes precedence over the packaged one.
    """
    path = cache_dir("ama") / f"{CLASSIFIER_VERSION}-classifier.json"
    if not retrain:
        for candidate in (path, PACKAGED_CLASSIFIER):
            if candidate.is_file():
                return SafetyClassifier.load(candidate)
    clf = SafetyClassifier.fit()
    clf.save(path)
    return clf


class SegmentScorer(Scorer):
    """Sentences and clauses scored by a :class:`SafetyClassifier` (log-odds of safe)."""

    name = "segment"

    def __init__(self, classifier: SafetyClassifier | None = None) -> None:
        self.classifier = classifier or trained_safety_classifier()

    def fingerprint(self) -> str:
        return f"segment:{self.classifier.fingerprint()}"

    def score(self, prompt: str, response: str) -> list[Span]:
        return self.score_many([prompt], [response])[0]

    def score_many(self, prompts: Sequence[str], responses: Sequence[str]) -> list[list[Span]]:
        pieces = [split_messages(r) for r in responses]
        texts = [r[a:b] for r, ps in zip(responses, pieces, strict=True) for a, b in ps]
        values = iter(self.classifier.log_odds(texts).tolist())
        return [[(a, b, float(next(values))) for a, b in ps] for ps in pieces]


# --------------------------------------------------------------------------------------------
# Token-level scorers (a causal LM pair, a reward model)
# --------------------------------------------------------------------------------------------


def _prompt_and_completion_ids(
    tokenizer, prompt: str, response: str
) -> tuple[list[int], list[int]]:
    """Templated prompt ids and the completion ids that follow them (response + end of turn)."""
    from equilibrate.profiles import encode_chat

    prompt_ids = encode_chat(tokenizer, prompt, add_generation_prompt=True)
    full = encode_chat(
        tokenizer,
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        add_generation_prompt=False,
    )
    k = 0
    while k < min(len(prompt_ids), len(full)) and prompt_ids[k] == full[k]:
        k += 1
    return full[:k], full[k:]


def _spans_from_tokens(tokenizer, completion: list[int], response: str, values) -> list[Span]:
    """One span per completion token that covers response characters."""
    spans = []
    for rng, value in zip(token_char_spans(tokenizer, completion, response), values, strict=True):
        if rng is not None:
            spans.append((rng[0], rng[1], float(value)))
    return spans


class ImplicitScorer(Scorer):
    """Per-token DPO implicit reward ``beta * (log pi_dpo - log pi_ref)``.

    Args:
        policy: the policy after a short plain-DPO warm-up (a ``PeftModel`` or a full model).
        tokenizer: its tokenizer, with a chat template.
        reference: the reference model; ``None`` with a ``PeftModel`` policy means the policy
            with its adapters disabled.
        beta: the DPO beta of the warm-up (scales scores to reward units).
        key: names the policy in the cache fingerprint (e.g. its adapter's run id).
    """

    name = "implicit"

    def __init__(self, policy, tokenizer, reference=None, beta: float = 0.1, key: str = "") -> None:
        if reference is None and not hasattr(policy, "disable_adapter"):
            raise ConfigError("reference", "needed unless the policy is a PEFT model")
        if not beta > 0:
            raise ConfigError("beta", f"expected a number > 0, got {beta}")
        self.policy, self.tokenizer, self.reference, self.beta = policy, tokenizer, reference, beta
        self.key = key or f"{type(policy).__name__}-{id(policy)}"

    def fingerprint(self) -> str:
        return f"implicit:{self.key}:beta={self.beta}"

    def _token_log_probs(self, model, ids: list[int], start: int):
        """log p(ids[t] | ids[<t]) for t >= start, float32 [len(ids) - start]."""
        import torch

        tensor = torch.tensor([ids], device=next(model.parameters()).device)
        with torch.no_grad():
            logits = model(input_ids=tensor).logits[0, start - 1 : -1].float()
        return torch.log_softmax(logits, -1).gather(-1, tensor[0, start:, None]).squeeze(-1)

    def score(self, prompt: str, response: str) -> list[Span]:
        prompt_ids, completion = _prompt_and_completion_ids(self.tokenizer, prompt, response)
        if not completion:
            return []
        ids = prompt_ids + completion
        policy_lp = self._token_log_probs(self.policy, ids, len(prompt_ids))
        if self.reference is None:
            with self.policy.disable_adapter():
                ref_lp = self._token_log_probs(self.policy, ids, len(prompt_ids))
        else:
            ref_lp = self._token_log_probs(self.reference, ids, len(prompt_ids))
        values = (self.beta * (policy_lp - ref_lp)).tolist()
        return _spans_from_tokens(self.tokenizer, completion, response, values)


class RewardModelScorer(Scorer):
    """A sequence-classification reward model read at every response position.

    Args:
        model: ``AutoModelForSequenceClassification`` with one label (its head is ``score`` or
            ``classifier``), applied to the templated conversation.
        tokenizer: its tokenizer, with a chat template.
        mode: ``"delta"`` (reward change made by each token) or ``"prefix"`` (reward of the
            prefix ending at each token); see the module docstring.
        key: names the reward model in the cache fingerprint.
    """

    name = "reward-model"

    def __init__(self, model, tokenizer, mode: str = "delta", key: str = "") -> None:
        if mode not in ("delta", "prefix"):
            raise ConfigError("mode", f"expected 'delta' or 'prefix', got {mode!r}")
        self.head = getattr(model, "score", None) or getattr(model, "classifier", None)
        if self.head is None:
            raise ConfigError(
                "model",
                "expected a sequence-classification model with a 'score' or 'classifier' head",
            )
        self.model, self.tokenizer, self.mode = model, tokenizer, mode
        self.key = key or getattr(model.config, "_name_or_path", "") or type(model).__name__

    def fingerprint(self) -> str:
        return f"reward-model:{self.key}:{self.mode}"

    def position_rewards(self, ids: list[int]):
        """Reward of every prefix ``ids[:t+1]``, float32 [len(ids)]."""
        import torch

        tensor = torch.tensor([ids], device=next(self.model.parameters()).device)
        with torch.no_grad():
            hidden = self.model.base_model(input_ids=tensor).last_hidden_state
            return self.head(hidden)[0, :, 0].float()

    def score(self, prompt: str, response: str) -> list[Span]:
        prompt_ids, completion = _prompt_and_completion_ids(self.tokenizer, prompt, response)
        if not completion:
            return []
        rewards = self.position_rewards(prompt_ids + completion)
        start = len(prompt_ids)
        if self.mode == "prefix":
            values = rewards[start:]
        else:
            values = rewards[start:] - rewards[start - 1 : -1]
        return _spans_from_tokens(self.tokenizer, completion, response, values.tolist())


def get_scorer(name: str, **kwargs: Any) -> Scorer:
    """A scorer by name: ``segment`` (no arguments needed), ``implicit`` (``policy``,
    ``tokenizer``, ...), ``reward-model`` (``model``, ``tokenizer``, ...)."""
    if name == "segment":
        return SegmentScorer(**kwargs)
    if name == "implicit":
        return ImplicitScorer(**kwargs)
    if name == "reward-model":
        return RewardModelScorer(**kwargs)
    raise ConfigError("scorer", f"expected one of {SCORERS}, got {name!r}")


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def _text(value: Any, field_name: str, row: int) -> str:
    """The text of a prompt/response field: a string or a list of chat messages (last one)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    from equilibrate.errors import DataFormatError

    raise DataFormatError("dataset", row, field_name, "expected a string or a list of messages")


def _cache_key(prompt: str, response: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()[:32]


def score_dataset(dataset, scorer: Scorer | str, *, cache: bool = True):
    """Add ``chosen_spans`` and ``rejected_spans`` (lists of ``[start, end, score]``) to a
    preference dataset.

    Args:
        dataset: a ``datasets.Dataset`` or a list of dicts with ``prompt``, ``chosen`` and
            ``rejected`` (strings, or trl conversational message lists: the last user message is
            the prompt text, the last assistant message the response).
        scorer: any :class:`Scorer`, or ``"segment"`` (the others need a model: build them).
        cache: keep spans in ``cache_dir("ama", "scores")``, keyed by the scorer's fingerprint
            and the texts, so nothing is scored twice.

    Returns:
        the same kind of object with the two columns added (a list is copied, not changed).
    """
    if isinstance(scorer, str):
        if scorer != "segment":
            raise ConfigError(
                "scorer", f"{scorer!r} needs a model; pass an ImplicitScorer/RewardModelScorer"
            )
        scorer = SegmentScorer()
    rows = dataset.to_list() if hasattr(dataset, "to_list") else [dict(r) for r in dataset]
    store: dict[str, list] = {}
    path = None
    if cache:
        fp = hashlib.sha256(scorer.fingerprint().encode()).hexdigest()[:16]
        path = cache_dir("ama", "scores") / f"{scorer.name}-{fp}.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    store[entry["key"]] = entry["spans"]
    todo: dict[str, tuple[str, str]] = {}
    for i, row in enumerate(rows, start=1):
        prompt = _text(row.get("prompt"), "prompt", i)
        for side in ("chosen", "rejected"):
            response = _text(row.get(side), side, i)
            key = _cache_key(prompt, response)
            if key not in store:
                todo[key] = (prompt, response)
    if todo:
        keys = list(todo)
        spans = scorer.score_many([todo[k][0] for k in keys], [todo[k][1] for k in keys])
        new = {
            k: [[int(a), int(b), float(s)] for a, b, s in sp]
            for k, sp in zip(keys, spans, strict=True)
        }
        store.update(new)
        if path is not None:
            with path.open("a", encoding="utf-8") as handle:
                for key, sp in new.items():
                    handle.write(json.dumps({"key": key, "spans": sp}) + "\n")
    logger.info(
        "scored %d responses with %s (%d from cache)",
        2 * len(rows),
        scorer.name,
        2 * len(rows) - len(todo),
    )
    for i, row in enumerate(rows, start=1):
        prompt = _text(row.get("prompt"), "prompt", i)
        for side in ("chosen", "rejected"):
            row[f"{side}_spans"] = store[_cache_key(prompt, _text(row.get(side), side, i))]
    if hasattr(dataset, "to_list"):
        from datasets import Dataset

        return Dataset.from_list(rows)
    return rows
