"""The crisis grammars: dimensions with spans, context that cancels a hit, languages, bad files.

These sentences are written for the unit tests; the functional suite (tests/suites/crisis) is the
measure of quality and is run separately (tests/test_functional_suites.py).
"""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation_service.core.crisis import CrisisDetector, Dimension, LanguageDetector, assess, level_of, load_grammars
from moderation_service.core.crisis.grammar import CrisisGrammar
from moderation_service.core.decision import DistressLevel
from moderation_service.errors import RulebookError
from tests.grammars import language_detector, shipped_grammars

RULES = Path(__file__).resolve().parent.parent / "rules"


@functools.cache
def _shared_detector() -> CrisisDetector:
    return CrisisDetector(shipped_grammars(), language_detector())


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return _shared_detector()


def dims(detector: CrisisDetector, text: str, locale: str | None = None) -> set[str]:
    return {s.dimension.value for s in detector.detect({"body": text}, locale).signals}


def level(detector: CrisisDetector, text: str, locale: str | None = None) -> DistressLevel:
    return assess(detector.detect({"body": text}, locale).signals).level


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cant do this any more. ive got my tablets saved up", {"means", "hopelessness"}),
        ("been quietly stockpiling my pregabalin since october", {"means"}),
        ("the oxy is stashed in my sock drawer and I just want it over", {"means"}),
        ("I have saved up my tablets and I plan to take them all tonight.", {"means", "plan", "timing"}),
        ("honestly the family would be better off without me", {"passive_ideation"}),
        ("keep thinking about ending it all", {"active_ideation"}),
        ("wrote letters to both the kids and sorted out my will. I cant go on", {"preparation", "hopelessness"}),
        ("I've taken all my tablets. sorry", {"attempt"}),
        ("cut my arms again last night", {"self_harm"}),
        ("my daughter keeps saying she wants to die, what do I do", {"concern_other"}),
        ("gonna k1ll mys3lf", {"active_ideation"}),
        ("i want to s u i c i d e", set()),  # spaced letters join, but "want to suicide" is no pattern: no guess
        ("thinking about s.u.i.c.i.d.e again", {"active_ideation"}),
    ],
)
def test_dimensions_found(detector: CrisisDetector, text: str, expected: set[str]) -> None:
    assert expected <= dims(detector, text)


@pytest.mark.parametrize(
    "text",
    [
        "This pain is killing me today, my painkillers barely touch it",
        "I could murder a bacon roll",
        "dying to know how your scan went!",
        "I nearly died of embarrassment when my stoma bag gurgled",
        "just kill me now, 90 minutes on hold to the DWP",
        "I would never kill myself, I've got the grandkids",
        "I don't want to die, I'm terrified of the op",
        "six years ago I took an overdose. I'm in a much better place now",
        "if you ever feel suicidal please ring Samaritans on 116 123",
        'someone messaged me "kill yourself" and I reported it',
        "suicide prevention week starts Monday, our group is doing a walk",
        "stocking up on my meds before the holiday in Spain",
        "how many paracetamol can I take in a day with co-codamol?",
        "my uncle took his own life in 2011 and I still miss him",
        "spent the whole of 2014 wanting to die. These days I run a walking group for people with COPD",
        "it's the fifth anniversary of my overdose on Sunday and I'm having a cake",
        "my self harm recovery group finished today, I'll miss the ladies",
    ],
)
def test_hard_negatives_are_not_risk(detector: CrisisDetector, text: str) -> None:
    assert level(detector, text) in (DistressLevel.none, DistressLevel.low)


def test_a_year_still_to_come_is_not_the_past(detector: CrisisDetector) -> None:
    """``<year>`` in the past lists names years already over: a future year never cancels a hit."""
    next_year = datetime.date.today().year + 1
    assert level(detector, f"I want to die, I won't see the end of {next_year}") is DistressLevel.high
    assert level(detector, "I wanted to die for most of 2015") in (DistressLevel.none, DistressLevel.low)


def test_an_anniversary_does_not_hide_a_new_attempt(detector: CrisisDetector) -> None:
    text = "it's the anniversary of my overdose and I've taken them all again"
    assert level(detector, text) is DistressLevel.imminent


def test_telling_ones_age_is_not_telling_the_past(detector: CrisisDetector) -> None:
    """ "i was 19" is the past; "I'm 19" (lemma "be" too) is the present, so what follows it still counts."""
    assert level(detector, "im 19 and I've been cutting again since the summer") is DistressLevel.high
    assert level(detector, "when i was 19 i cut myself most weeks, i'm in a good place now") is DistressLevel.none


def test_a_present_cue_inside_a_past_one_is_that_past(detector: CrisisDetector) -> None:
    recovery = "Eight years ago this week I was in hospital after a suicide attempt. So glad I stuck around"
    assert level(detector, recovery) is DistressLevel.none
    relapse = "two years ago today i tried to end my life, and tonight i've got the tablets out again"
    assert level(detector, relapse) is DistressLevel.imminent


def test_the_hits_own_clause_decides_between_past_and_present(detector: CrisisDetector) -> None:
    """A sentence that says "now" elsewhere does not make a clause about age 20 current; one that says "again" does."""
    told_from_now = "i tried to kill myself when i was 20 after the diagnosis, and im 31 now with my own flat"
    assert level(detector, told_from_now) in (DistressLevel.none, DistressLevel.low)
    again_now = "i tried to kill myself when i was 20, and now i want to kill myself again"
    assert level(detector, again_now) is DistressLevel.high
    diagnosed = "I had suicidal thoughts when my MS was diagnosed and my GP was brilliant"
    assert level(detector, diagnosed) in (DistressLevel.none, DistressLevel.low)
    since_diagnosis = "Ever since my MS was diagnosed I have suicidal thoughts every day"
    assert level(detector, since_diagnosis) is DistressLevel.high


@pytest.mark.parametrize(
    "text",
    [
        "i took an overdose about an hour ago and now im scared",
        "I tried to end my life this afternoon, I'm on a ward now",
        "took a handful of my pills, dont know how many",
        "cut really deep this time, cant stop it",
    ],
)
def test_an_attempt_just_made_is_imminent(detector: CrisisDetector, text: str) -> None:
    assert level(detector, text) is DistressLevel.imminent


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("I can't do this anymore, I've got my tablets saved up", DistressLevel.imminent),
        ("I'm going to kill myself tonight", DistressLevel.imminent),
        ("this is my last post. thank you all for everything", DistressLevel.imminent),
        ("Honestly everyone would be better off without me", DistressLevel.high),
        ("I feel so alone and I can't cope", DistressLevel.low),
        ("Had a lovely walk with the dog", DistressLevel.none),
    ],
)
def test_levels(detector: CrisisDetector, text: str, want: DistressLevel) -> None:
    assert level(detector, text) is want


@pytest.mark.parametrize(
    ("text", "locale", "want"),
    [
        ("ya no quiero vivir, tengo las pastillas preparadas", "es-ES", DistressLevel.imminent),
        ("ya no quiero vivir, tengo las pastillas preparadas", None, DistressLevel.imminent),
        ("me muero de risa con este vídeo", "es-ES", DistressLevel.none),
        ("je ne veux plus vivre, j'ai gardé mes médicaments", "fr-FR", DistressLevel.imminent),
        ("je meurs de faim", "fr-FR", DistressLevel.none),
        ("Ich will nicht mehr leben, ich habe die Tabletten gesammelt", "de-DE", DistressLevel.imminent),
        ("ich sterbe vor Hunger", None, DistressLevel.none),
        ("voglio farla finita stanotte", "it-IT", DistressLevel.imminent),
        ("muoio di fame", "it-IT", DistressLevel.none),
        ("tomei todos os comprimidos", "pt-PT", DistressLevel.imminent),
        ("morrendo de rir aqui", "pt-PT", DistressLevel.none),
        ("chcę umrzeć dziś w nocy", "pl-PL", DistressLevel.imminent),
        ("umieram ze śmiechu", "pl-PL", DistressLevel.none),
        ("Dw i eisiau marw heno", "cy-GB", DistressLevel.imminent),
        ("bron marw o chwerthin", "cy-GB", DistressLevel.none),
    ],
)
def test_languages(detector: CrisisDetector, text: str, locale: str | None, want: DistressLevel) -> None:
    assert level(detector, text, locale) is want


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ya no quiero vivir, tengo las pastillas preparadas", "es"),
        ("I want to die", "en"),
        ("My GP upped my pregabalin again", "en"),
        ("Dw i ddim eisiau byw rhagor", "cy"),
        ("chcę umrzeć", "pl"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    guess = LanguageDetector().detect(text)
    assert guess.language == language and "en" in guess.candidates


def test_spans_point_at_the_words_the_author_wrote(detector: CrisisDetector) -> None:
    text = "Long day at the rheumy clinic.\nHonestly, I've g0t my TABLETS  saved up, and tonight's the night."
    signals = detector.detect({"body": text}, "en-GB").signals
    quoted = {s.dimension: text[s.start or 0 : s.end or 0] for s in signals}
    assert quoted[Dimension.means] == "TABLETS  saved up"
    assert quoted[Dimension.timing] in ("tonight's the night", "tonight")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["I want to die.", "my tablets are saved up.", "tonight.", "what's the point.", "nice day."]), min_size=1),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
)
def test_every_span_lies_inside_its_field(sentences: list[str], noise: str) -> None:
    detector = _shared_detector()  # built once: hypothesis runs this body 60 times
    text = noise + " " + " ".join(sentences)
    for signal in detector.detect({"body": text}, "en-GB").signals:
        assert signal.start is not None and signal.end is not None
        assert 0 <= signal.start < signal.end <= len(text)


@given(st.sets(st.sampled_from(list(Dimension))), st.sampled_from(list(Dimension)))
def test_a_further_dimension_never_lowers_the_level(found: set[Dimension], extra: Dimension) -> None:
    order = {DistressLevel.none: 0, DistressLevel.low: 1, DistressLevel.high: 2, DistressLevel.imminent: 3}
    assert order[level_of(found | {extra})] >= order[level_of(found)]


def test_a_bad_grammar_file_names_file_and_pattern(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text(
        "language: en\nname: test\nlexicon: {MED: [pill]}\npatterns:\n  means: ['NOPE pill']\n  bogus: ['x']\n", encoding="utf-8"
    )
    with pytest.raises(RulebookError) as caught:
        load_grammars(tmp_path)
    text = str(caught.value)
    assert "en.yaml" in text and "bogus" in text


def test_an_unknown_lexicon_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("language: en\nname: test\npatterns:\n  means: ['NOPE pill']\n", encoding="utf-8")
    with pytest.raises(RulebookError, match="unknown lexicon class 'NOPE'"):
        load_grammars(tmp_path)


def test_every_shipped_grammar_loads_with_patterns_for_the_core_dimensions() -> None:
    grammars = load_grammars(RULES / "crisis")
    assert set(grammars) >= {"en", "es", "fr", "de", "it", "pt", "pl", "cy"}
    for grammar in grammars.values():
        assert isinstance(grammar, CrisisGrammar)
        keys = {part for key in grammar.file.patterns for part in key.split("+")}
        assert {"passive_ideation", "active_ideation", "means", "attempt", "self_harm"} <= keys, grammar.language


def test_a_repeated_key_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("language: en\nname: t\npatterns:\n  means: [pill]\n  means: [tablet]\n", encoding="utf-8")
    with pytest.raises(RulebookError, match=r"en.yaml:5: cannot read: duplicate key 'means'"):
        load_grammars(tmp_path)


def test_english_words_are_counted_as_folded_so_leet_and_text_speak_read_as_english() -> None:
    detector = _shared_detector()
    # As written, "m0r0n" splits into "m", "r", "n" and lingua reads Albanian; folded it is "u r a moron".
    assert detector.languages.detect("u r a m0r0n @dave").language != "en"
    assert detector.detect({"body": "u r a m0r0n @dave"}, None).language.language == "en"
    assert detector.detect({"body": "ya no quiero vivir, tengo las pastillas preparadas"}, None).language.language == "es"
