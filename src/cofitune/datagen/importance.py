"""The "importance" set: general short-answer instructions used to estimate which weights
matter for versatility.

It covers the same three abilities as the versatility suite (knowledge, reasoning,
understanding), but in open-ended SFT form with its own sentence templates, names of
relations and passage plots, so no versatility question text appears here. Knowledge rows
reuse the fact tables (the same facts, asked differently); this is documented in DATASHEET.md.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from cofitune.datagen import facts
from cofitune.datagen.common import Row, dedupe, rng_for, sample_unique, sft_text

QUOTAS = {"knowledge": 300, "reasoning": 250, "understanding": 250}  # 800 rows in all


def _row(instruction: str, output: str, input_text: str = "") -> Row:
    return {"instruction": instruction, "input": input_text, "output": output}


def _next_in(seq: tuple[str, ...], item: str, step: int) -> str:
    return seq[(seq.index(item) + step) % len(seq)]


def _knowledge_pool() -> list[Row]:
    rows = []
    for country, capital, continent in facts.COUNTRIES:
        rows.append(_row(f"Name the capital city of {country}.", capital))
        rows.append(_row(f"Which country has {capital} as its capital? Give only the country.", country))
        rows.append(_row(f"Name the continent where {country} lies.", continent))
    for name, symbol in facts.ELEMENTS:
        rows.append(_row(f"Write the chemical symbol of the element {name}.", symbol))
        rows.append(_row(f"Name the element whose symbol is {symbol}.", name))
    rows.extend(_row(f"Name the SI unit used to measure {q}.", u) for q, u in facts.UNITS)
    rows.extend(_row(f"Is a {a} a mammal, bird, fish, reptile, amphibian or insect?", k) for a, k in facts.ANIMALS)
    rows.extend(_row(f"Give the plural of the word '{s}'.", p) for s, p in facts.IRREGULAR_PLURALS)
    for seq, kind in ((facts.WEEKDAYS, "day of the week"), (facts.MONTHS, "month")):
        for item in seq:
            rows.append(_row(f"Which {kind} follows {item}?", _next_in(seq, item, 1)))
            rows.append(_row(f"Which {kind} comes directly before {item}?", _next_in(seq, item, -1)))
    return rows


IMPORTANCE_RELATIONS = (  # disjoint from the versatility RELATIONS on purpose
    ("older", "oldest", "youngest"),
    ("stronger", "strongest", "weakest"),
    ("richer", "richest", "poorest"),
)
FOODS = ("cheese", "plums", "rice", "soup", "bread", "nuts", "honey", "carrots")


def _greater(rng: random.Random) -> Row:
    a, b = rng.sample(range(100, 1000), 2)
    return _row(f"Which is greater, {a} or {b}? Reply with the number.", str(max(a, b)))


def _order(rng: random.Random) -> Row:
    nums = rng.sample(range(1, 60), 3)
    listed = ", ".join(map(str, nums))
    return _row(f"Sort these numbers from smallest to largest: {listed}.", ", ".join(map(str, sorted(nums))))


def _chain(rng: random.Random) -> Row:
    a, b, c = (n for n, _ in rng.sample(facts.FIRST_NAMES, 3))
    comparative, top, bottom = rng.choice(IMPORTANCE_RELATIONS)
    ask_top = rng.random() < 0.5
    facts_text = f"{a} is {comparative} than {b}, and {b} is {comparative} than {c}."
    return _row(f"Of the three, who is the {top if ask_top else bottom}?", a if ask_top else c, facts_text)


def _likes(rng: random.Random) -> Row:
    noun, name, food = rng.choice(facts.NONSENSE_NOUNS), rng.choice(facts.NONSENSE_NAMES), rng.choice(FOODS)
    return _row(f"Every one of the {noun} eats {food}. {name} belongs to the {noun}. What does {name} eat?", food)


def _reasoning_row(rng: random.Random) -> Row:
    return rng.choice((_greater, _order, _chain, _likes))(rng)


def _party(rng: random.Random) -> Row:
    (name, pron), (host, _) = rng.sample(facts.FIRST_NAMES, 2)
    food, day = rng.choice(("a cake", "some biscuits", "a pie", "a pot of soup")), rng.choice(facts.WEEKDAYS)
    passage = f"On {day}, {name} cooked {food} for {host}'s party. {pron.capitalize()} took the food there by bus."
    question, answer = rng.choice(((f"What did {name} cook?", food), ("Whose party was it?", host),
                                   ("How did the food get to the party?", "by bus"), ("On which day was the cooking done?", day)))
    return _row(f"Read the text and answer: {question}", answer, passage)


def _letter(rng: random.Random) -> Row:
    (writer, _), (reader, _) = rng.sample(facts.FIRST_NAMES, 2)
    month, city = rng.choice(facts.MONTHS), rng.choice(facts.COUNTRIES)[1]
    passage = f"{writer} wrote a letter to {reader} in {month}. The letter was posted in {city}."
    question, answer = rng.choice((("Who received the letter?", reader), ("Who wrote the letter?", writer),
                                   ("In which month was the letter written?", month), ("Where was the letter posted?", city)))
    return _row(f"Read the text and answer: {question}", answer, passage)


def _word_row(rng: random.Random) -> Row:
    kind = rng.choice(("synonym", "antonym", "category"))
    if kind == "synonym":
        group = rng.choice([g for g in facts.SYNONYM_GROUPS if len(g) > 1])
        cue, answer = rng.sample(group, 2)
        return _row(f"Give one word with a similar meaning to '{cue}'.", answer)
    if kind == "antonym":
        pair = rng.choice(facts.ANTONYM_PAIRS)
        cue_head, answer_head = pair if rng.random() < 0.5 else pair[::-1]
        cue = rng.choice(next(g for g in facts.SYNONYM_GROUPS if g[0] == cue_head))
        return _row(f"Give one word that is opposite in meaning to '{cue}'.", answer_head)
    category = rng.choice(sorted(facts.CATEGORIES))
    member = rng.choice(facts.CATEGORIES[category])
    return _row(f"Which category does the word '{member}' belong to?", category)


def _understanding_row(rng: random.Random) -> Row:
    maker: Callable[[random.Random], Row] = rng.choice((_party, _letter, _word_row))
    return maker(rng)


def importance_rows(seed: int) -> list[Row]:
    """800 open-ended SFT rows: knowledge, reasoning and understanding, shuffled."""
    rng = rng_for(seed, "importance")
    knowledge = dedupe(_knowledge_pool(), sft_text)
    rng.shuffle(knowledge)
    rows = knowledge[: QUOTAS["knowledge"]]
    seen = {sft_text(r) for r in rows}
    rows += sample_unique(_reasoning_row, rng, QUOTAS["reasoning"], sft_text, seen)
    rows += sample_unique(_understanding_row, rng, QUOTAS["understanding"], sft_text, seen)
    rng.shuffle(rows)
    return rows
