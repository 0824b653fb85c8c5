"""Crisis risk: C-SSRS dimensions found by a lemma-aware grammar and model heads, combined into a level."""

from moderation_service.core.crisis.assess import RiskAssessment, assess, level_of
from moderation_service.core.crisis.detector import CrisisDetector, CrisisFinding
from moderation_service.core.crisis.dimensions import HEAD_LABELS, LEVEL_HEADS, RISK_PREFIX, Dimension, RiskSignal
from moderation_service.core.crisis.grammar import CrisisGrammar, load_grammars
from moderation_service.core.crisis.language import LanguageDetector, LanguageGuess

__all__ = [
    "HEAD_LABELS",
    "LEVEL_HEADS",
    "RISK_PREFIX",
    "CrisisDetector",
    "CrisisFinding",
    "CrisisGrammar",
    "Dimension",
    "LanguageDetector",
    "LanguageGuess",
    "RiskAssessment",
    "RiskSignal",
    "assess",
    "level_of",
    "load_grammars",
]
