"""Versatility suite: six four-way multiple-choice tasks in three groups.

Every question is self-contained: when it compares options it lists them inline, so a model
scored by the log-likelihood of each choice after the question alone can still answer it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NamedTuple

from cofitune.datagen import facts
from cofitune.datagen.common import (
    Row,
    balanced_positions,
    dedupe,
    join_options,
    normalise,
    place_answer,
    rng_for,
)

OPTIONS = "{options}"  # placeholder for the inline option list, filled once the order is fixed
DEFAULT_SIZE = 180
MIN_SIZE = 150


class Draft(NamedTuple):
    question: str
    answer: str
    distractors: tuple[str, ...]  # exactly three


def _pick(rng: random.Random, pool: list[str] | tuple[str, ...], k: int, exclude: set[str]) -> tuple[str, ...]:
    return tuple(rng.sample(sorted(set(pool) - exclude), k))


# --- knowledge -----------------------------------------------------------------------------

def _world_drafts(rng: random.Random) -> list[Draft]:
    capitals = [c[1] for c in facts.COUNTRIES]
    countries = [c[0] for c in facts.COUNTRIES]
    drafts = []
    for country, capital, continent in facts.COUNTRIES:
        drafts.append(Draft(f"What is the capital of {country}?", capital, _pick(rng, capitals, 3, {capital})))
        drafts.append(Draft(f"{capital} is the capital city of which country?", country, _pick(rng, countries, 3, {country})))
        drafts.append(Draft(f"On which continent is {country}?", continent, _pick(rng, facts.CONTINENTS, 3, {continent})))
    return drafts


def _science_drafts(rng: random.Random) -> list[Draft]:
    names, symbols = zip(*facts.ELEMENTS, strict=True)
    quantities, units = zip(*facts.UNITS, strict=True)
    drafts = []
    for name, symbol in facts.ELEMENTS:
        drafts.append(Draft(f"What is the chemical symbol for {name}?", symbol, _pick(rng, symbols, 3, {symbol})))
        drafts.append(Draft(f"Which element has the chemical symbol {symbol}?", name, _pick(rng, names, 3, {name})))
    for quantity, unit in facts.UNITS:
        drafts.append(Draft(f"What is the SI unit of {quantity}?", unit, _pick(rng, units, 3, {unit})))
        drafts.append(Draft(f"The {unit} is the SI unit of which quantity?", quantity, _pick(rng, quantities, 3, {quantity})))
    for animal, kind in facts.ANIMALS:
        question = f"What type of animal is a {animal}: a {OPTIONS}?"
        drafts.append(Draft(question, kind, _pick(rng, facts.ANIMAL_CLASSES, 3, {kind})))
    drafts.extend(Draft(q, a, d) for q, a, d in facts.SCIENCE_FACTS)
    return drafts


# --- reasoning -----------------------------------------------------------------------------

def _compare_people(rng: random.Random) -> Draft:
    (a, _), (b, _), *others = rng.sample(facts.FIRST_NAMES, 4)
    x, y = rng.sample(range(2, 40), 2)
    thing = rng.choice(("apples", "books", "coins", "stickers", "marbles", "pencils", "shells", "cards"))
    more = rng.random() < 0.5
    winner = a if (x > y) == more else b
    loser = b if winner == a else a
    question = f"{a} has {x} {thing} and {b} has {y} {thing}. Who has {'more' if more else 'fewer'} {thing}?"
    return Draft(question, winner, (loser, others[0][0], others[1][0]))


def _compare_sequence(rng: random.Random) -> Draft:
    n = rng.randrange(11, 98)
    after = rng.random() < 0.5
    answer = n + 1 if after else n - 1
    wrong = (n - 1 if after else n + 1, answer + 10, answer - 10)
    word = "after" if after else "before"
    return Draft(f"When counting, which number comes just {word} {n}?", str(answer), tuple(str(w) for w in wrong))


def _compare_drafts(rng: random.Random) -> list[Draft]:
    # Picking the largest of four listed numbers was dropped: SmolLM2-135M scored 20-33% on it,
    # which would only add noise to a forgetting measure.
    makers = (_compare_people, _compare_sequence)
    return [makers[i % len(makers)](rng) for i in range(3 * DEFAULT_SIZE)]


RELATIONS = (  # comparative, superlative of the first, superlative of the last
    ("taller", "tallest", "shortest"),
    ("heavier", "heaviest", "lightest"),
    ("faster", "fastest", "slowest"),
)


def _logic_transitive(rng: random.Random) -> Draft:
    a, b, c, outsider = (n for n, _ in rng.sample(facts.FIRST_NAMES, 4))
    comparative, top, bottom = rng.choice(RELATIONS)
    premises = [f"{a} is {comparative} than {b}.", f"{b} is {comparative} than {c}."]
    rng.shuffle(premises)
    ask_top = rng.random() < 0.5
    answer, middle_or_end = (a, c) if ask_top else (c, a)
    question = f"{' '.join(premises)} Who is the {top if ask_top else bottom}?"
    return Draft(question, answer, (b, middle_or_end, outsider))


def _logic_syllogism(rng: random.Random) -> Draft:
    noun = rng.choice(facts.NONSENSE_NOUNS)
    name = rng.choice(facts.NONSENSE_NAMES)
    if rng.random() < 0.5:
        colour = rng.choice(facts.PROPERTY_COLOURS)
        question = f"All {noun} are {colour}. {name} is one of the {noun}. What colour is {name}?"
        return Draft(question, colour, _pick(rng, facts.PROPERTY_COLOURS, 3, {colour}))
    ability = rng.choice(facts.PROPERTY_ABILITIES)
    question = f"All {noun} can {ability}. {name} is one of the {noun}. What can {name} do?"
    return Draft(question, ability, _pick(rng, facts.PROPERTY_ABILITIES, 3, {ability}))


def _logic_drafts(rng: random.Random) -> list[Draft]:
    return [(_logic_transitive if i % 2 else _logic_syllogism)(rng) for i in range(3 * DEFAULT_SIZE)]


# --- understanding -------------------------------------------------------------------------

def _passage_shopping(rng: random.Random) -> Draft:
    (name, pron), (friend, _), *others = rng.sample(facts.FIRST_NAMES, 5)
    place, day, obj = rng.choice(facts.PLACES), rng.choice(facts.WEEKDAYS), rng.choice(facts.OBJECTS)
    passage = f"{name} went to the {place} on {day}. There {pron} bought {obj} for {friend}."
    options = {
        "where": (f"Where did {name} go?", place, _pick(rng, facts.PLACES, 3, {place})),
        "when": (f"On which day did {name} go to the {place}?", day, _pick(rng, facts.WEEKDAYS, 3, {day})),
        "what": (f"What did {name} buy?", obj, _pick(rng, facts.OBJECTS, 3, {obj})),
        "who": ("Who was the gift for?", friend, tuple(o for o, _ in others)),
    }
    question, answer, wrong = options[rng.choice(sorted(options))]
    return Draft(f"{passage} {question}", answer, wrong)


def _passage_lost(rng: random.Random) -> Draft:
    (name, _), (finder, _), *others = rng.sample(facts.FIRST_NAMES, 5)
    place, obj = rng.choice(facts.PLACES), rng.choice(facts.OBJECTS)
    passage = f"{name} lost {obj} at the {place}. The next day {finder} found it and gave it back."
    options = {
        "what": (f"What did {name} lose?", obj, _pick(rng, facts.OBJECTS, 3, {obj})),
        "where": ("Where was the lost item?", place, _pick(rng, facts.PLACES, 3, {place})),
        "who": ("Who found the lost item?", finder, tuple(o for o, _ in others)),
    }
    question, answer, wrong = options[rng.choice(sorted(options))]
    return Draft(f"{passage} {question}", answer, wrong)


def _passage_move(rng: random.Random) -> Draft:
    name, pron = rng.choice(facts.FIRST_NAMES)
    cities = [c[1] for c in facts.COUNTRIES]
    old, new = rng.sample(cities, 2)
    month, place = rng.choice(facts.MONTHS), rng.choice(facts.PLACES)
    passage = f"In {month}, {name} moved from {old} to {new}. There {pron} found a job at a {place}."
    options = {
        "to": (f"Which city did {name} move to?", new, (old, *_pick(rng, cities, 2, {old, new}))),
        "month": (f"In which month did {name} move?", month, _pick(rng, facts.MONTHS, 3, {month})),
        "job": (f"Where does {name} work now?", place, _pick(rng, facts.PLACES, 3, {place})),
    }
    question, answer, wrong = options[rng.choice(sorted(options))]
    return Draft(f"{passage} {question}", answer, wrong)


def _passage_drafts(rng: random.Random) -> list[Draft]:
    makers = (_passage_shopping, _passage_lost, _passage_move)
    return [makers[i % len(makers)](rng) for i in range(3 * DEFAULT_SIZE)]


def _group_of(word: str) -> tuple[str, ...]:
    return next(g for g in facts.SYNONYM_GROUPS if word in g)


def _unrelated_words(*heads: str) -> list[str]:
    """Words from synonym groups that are neither these groups nor confusable with them."""
    banned = set(heads)
    for x, y in facts.CONFUSABLE_GROUPS:
        if x in heads:
            banned.add(y)
        if y in heads:
            banned.add(x)
    return [w for g in facts.SYNONYM_GROUPS if g[0] not in banned for w in g]


def _word_drafts(rng: random.Random) -> list[Draft]:
    """Synonyms and antonyms (category membership, "which of these is a fruit", scored 21% on
    SmolLM2-135M, at chance, so it is left to the importance set)."""
    drafts = []
    for group in facts.SYNONYM_GROUPS:
        pool = _unrelated_words(group[0])
        for cue in group:
            for answer in group:
                if answer != cue:
                    drafts.append(Draft(f"Which word means the same as '{cue}'?", answer, _pick(rng, pool, 3, set())))
    for head_a, head_b in facts.ANTONYM_PAIRS:
        pool = _unrelated_words(head_a, head_b)
        for cue_group, answer_group in ((_group_of(head_a), _group_of(head_b)), (_group_of(head_b), _group_of(head_a))):
            for cue in cue_group:
                answer = rng.choice(answer_group)
                drafts.append(Draft(f"Which word means the opposite of '{cue}'?", answer, _pick(rng, pool, 3, set())))
    return drafts


# --- assembly ------------------------------------------------------------------------------

TASKS: dict[str, Callable[[random.Random], list[Draft]]] = {
    "vk_world": _world_drafts,
    "vk_science": _science_drafts,
    "vr_compare": _compare_drafts,
    "vr_logic": _logic_drafts,
    "vu_passage": _passage_drafts,
    "vu_words": _word_drafts,
}

GROUPS: dict[str, tuple[str, str]] = {
    "knowledge": ("vk_world", "vk_science"),
    "reasoning": ("vr_compare", "vr_logic"),
    "understanding": ("vu_passage", "vu_words"),
}


def _draft_key(draft: Draft) -> str:
    """Identity of an item regardless of where its answer will be placed."""
    listed = join_options(sorted((draft.answer, *draft.distractors)))
    return normalise(draft.question.replace(OPTIONS, listed))


def _to_row(task: str, index: int, draft: Draft, position: int, rng: random.Random) -> Row:
    choices = place_answer(draft.answer, draft.distractors, position, rng)
    question = draft.question.replace(OPTIONS, join_options(choices))
    return {"id": f"{task}-{index:04d}", "question": question, "choices": choices, "answer": position}


def versatility_task(task: str, seed: int, n: int = DEFAULT_SIZE) -> list[Row]:
    """`n` unique multiple-choice rows for one task (fewer if its table is smaller, never < 150)."""
    rng = rng_for(seed, task)
    drafts = dedupe(TASKS[task](rng), _draft_key)
    rng.shuffle(drafts)
    drafts = drafts[:n]
    if len(drafts) < min(n, MIN_SIZE):
        raise RuntimeError(f"{task}: only {len(drafts)} unique items")
    positions = balanced_positions(len(drafts), rng)
    return [_to_row(task, i, d, p, rng) for i, (d, p) in enumerate(zip(drafts, positions, strict=True))]


def versatility_suite(seed: int, n: int = DEFAULT_SIZE) -> dict[str, list[Row]]:
    return {task: versatility_task(task, seed, n) for task in TASKS}
