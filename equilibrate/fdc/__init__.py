"""Fine-grained safety-data categorization (FDC): categorizers, the prompt pool, pairs, mixes.

- :mod:`~equilibrate.fdc.categories`: the five categories and :class:`Categorized`.
- :mod:`~equilibrate.fdc.categorize`: :class:`EmbeddingCategorizer`, :class:`LLMJudgeCategorizer`.
- :mod:`~equilibrate.fdc.pool`: :func:`build_pool`.
- :mod:`~equilibrate.fdc.pairs`: :func:`build_pairs`, :func:`build_counter_examples`.
- :mod:`~equilibrate.fdc.mix`: :class:`MixConfig`, :func:`build_mix`.
"""

from equilibrate.fdc.categories import CATEGORIES, HARMFUL, Categorized, canonical_category
from equilibrate.fdc.categorize import (
    CategorizerReport,
    EmbeddingCategorizer,
    LLMJudgeCategorizer,
    evaluate_categories,
    parse_yes_no,
    trained_categorizer,
)
from equilibrate.fdc.mix import MixConfig, ShortfallError, build_mix
from equilibrate.fdc.pairs import PAIR_SOURCES, build_counter_examples, build_pairs, verify_pair
from equilibrate.fdc.pool import Pool, build_pool

__all__ = [
    "CATEGORIES",
    "HARMFUL",
    "PAIR_SOURCES",
    "Categorized",
    "CategorizerReport",
    "EmbeddingCategorizer",
    "LLMJudgeCategorizer",
    "MixConfig",
    "Pool",
    "ShortfallError",
    "build_counter_examples",
    "build_mix",
    "build_pairs",
    "build_pool",
    "canonical_category",
    "evaluate_categories",
    "parse_yes_no",
    "trained_categorizer",
    "verify_pair",
]
