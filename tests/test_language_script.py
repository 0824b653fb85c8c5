"""A post written wholly in a script that only one detected language uses is told without lingua, as lingua would tell it.

The shortcut saves lingua's ~0.4 ms on such posts; these tests hold it to lingua's own answer (confidence 1.0
for that language, no other language near a candidate), and keep shared scripts and mixed text with lingua.
"""

from __future__ import annotations

import pytest

from moderation_service.core.crisis import LanguageDetector
from moderation_service.core.crisis.language import own_script_language
from tests.grammars import language_detector

OWN_SCRIPT = {
    "el": ["Καλημέρα σε όλους, πώς είστε σήμερα;", "Ο γιατρός άλλαξε τη δόση μου."],
    "zh": ["大家早上好，今天感觉怎么样？", "医生换了我的药 2 次。"],
    "hi": ["सबको सुप्रभात, आज आप कैसे हैं?", "डॉक्टर ने मेरी दवा बदल दी।"],
    "bn": ["সবাইকে সুপ্রভাত, আজ কেমন আছেন?", "ডাক্তার আমার ওষুধ বদলে দিয়েছেন।"],
    "pa": ["ਸਾਰਿਆਂ ਨੂੰ ਸ਼ੁਭ ਸਵੇਰ, ਅੱਜ ਤੁਸੀਂ ਕਿਵੇਂ ਹੋ?", "ਡਾਕਟਰ ਨੇ ਮੇਰੀ ਦਵਾਈ ਬਦਲ ਦਿੱਤੀ।"],
    "gu": ["બધાને સુપ્રભાત, આજે તમે કેમ છો?", "ડૉક્ટરે મારી દવા બદલી નાખી."],
}


@pytest.mark.parametrize(("language", "text"), [(lang, text) for lang, texts in OWN_SCRIPT.items() for text in texts])
@pytest.mark.parametrize("locale", [None, "en-GB", "fr-FR"])
def test_an_own_script_post_gets_linguas_answer_without_lingua(language: str, text: str, locale: str | None) -> None:
    detector = language_detector()
    assert own_script_language(text) == language
    ranked = detector.ranked(text)  # what lingua says: that language, certain, nothing else a candidate
    assert ranked[0] == (language, 1.0) and all(value < 0.1 for _, value in ranked[1:])
    guess = detector.detect(text, locale)
    hinted = locale.split("-")[0] if locale else None
    assert (guess.language, guess.confidence) == (language, 1.0)
    assert guess.candidates == tuple(dict.fromkeys(c for c in (language, hinted, "en") if c))


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to someone",
        "Мне сегодня лучше, спасибо",  # Cyrillic: Russian, Ukrainian, Bulgarian
        "أشعر بتحسن اليوم",  # Arabic script: Arabic, Urdu, Persian
        "Καλημέρα, I feel better today",  # mixed: lingua decides
        "café ☕ 😊",
    ],
)
def test_shared_scripts_and_mixed_text_are_left_to_lingua(text: str) -> None:
    assert own_script_language(text) is None


def test_a_language_set_that_may_share_a_script_always_asks_lingua() -> None:
    detector = LanguageDetector(["hi", "mr", "en"])  # Marathi is written in Devanagari too
    marathi = "मला आज खूप बरे वाटत आहे, धन्यवाद"
    assert own_script_language(marathi) == "hi"  # the shortcut alone would say Hindi
    assert detector.detect(marathi).language == "mr"
