"""Speciality tasks: arithmetic word problems ("arith") and an invented statute ("statute").

Rows are SFT rows {"instruction", "input", "output"} with a short exact-match answer.
Train and test are drawn from one pool of rows with distinct inputs, then split, so no
test problem text or fact pattern ever appears in the training split.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from cofitune.datagen import facts
from cofitune.datagen.common import Row, normalise, rng_for, sample_unique

# --- arith ---------------------------------------------------------------------------------

ARITH_INSTRUCTIONS = (
    "Solve the word problem. Answer with a single integer.",
    "Work out the answer to this problem. Reply with the number only.",
    "Read the problem and give the answer as one whole number.",
    "Calculate the result. Give only the final number.",
)

ITEMS = (
    "apples", "pencils", "notebooks", "candles", "oranges", "marbles", "cups", "stamps",
    "roses", "toy cars", "loaves", "jars of jam", "balloons", "batteries", "envelopes", "tins of paint",
)
SHOPS = ("bakery", "bookshop", "fruit stall", "toy shop", "hardware store", "flower shop", "corner shop", "market stall")
DISHES = (("cakes", "eggs"), ("pancakes", "cups of milk"), ("muffins", "spoons of sugar"),
          ("loaves of bread", "cups of flour"), ("cookies", "bars of chocolate"), ("pies", "apples"))
PLANTS = ("tomato", "cabbage", "sunflower", "bean", "lettuce", "pepper", "tulip", "carrot")


def _person(rng: random.Random) -> tuple[str, str]:
    name, pron = rng.choice(facts.FIRST_NAMES)
    return name, pron.capitalize()


def _shop_stock(rng: random.Random) -> tuple[str, int]:
    name, pron = _person(rng)
    item, shop = rng.choice(ITEMS), rng.choice(SHOPS)
    a, b = rng.randint(20, 90), rng.randint(3, 19)
    c = rng.randint(2, 40)
    sold = rng.choice(("sells", "sold", "hands out"))
    return (f"{name} runs a {shop} and has {a} {item}. {pron} {sold} {b} of them in the morning "
            f"and then gets a delivery of {c} more. How many {item} does {name} have now?"), a - b + c


def _price_total(rng: random.Random) -> tuple[str, int]:
    name, _ = _person(rng)
    item, shop = rng.choice(ITEMS), rng.choice(SHOPS)
    p, q = rng.randint(2, 12), rng.randint(2, 9)
    return (f"At the {shop}, {item} cost {p} dollars each. {name} buys {q} {item}. "
            f"How many dollars does {name} pay in total?"), p * q


def _change(rng: random.Random) -> tuple[str, int]:
    name, _ = _person(rng)
    item = rng.choice(ITEMS)
    note = rng.choice((20, 50, 100))
    p, q = rng.randint(2, 9), rng.randint(2, 5)
    if p * q >= note:
        note = 100
    return (f"{name} buys {q} {item} at {p} dollars each and pays with a {note}-dollar note. "
            f"How many dollars of change does {name} get back?"), note - p * q


def _train_distance(rng: random.Random) -> tuple[str, int]:
    s, h = rng.choice((40, 50, 60, 70, 80, 90, 100, 120)), rng.randint(2, 6)
    vehicle = rng.choice(("A train", "A freight train", "An express train", "A coach"))
    return f"{vehicle} travels at {s} kilometres per hour for {h} hours. How many kilometres does it cover?", s * h


def _train_time(rng: random.Random) -> tuple[str, int]:
    s, h = rng.choice((30, 40, 50, 60, 80, 90)), rng.randint(2, 8)
    return (f"A train covers {s * h} kilometres at a steady speed of {s} kilometres per hour. "
            f"How many hours does the journey take?"), h


def _two_trains(rng: random.Random) -> tuple[str, int]:
    s1, s2, h = rng.choice((40, 50, 60, 70)), rng.choice((60, 80, 90, 100)), rng.randint(2, 4)
    return (f"Two trains leave the same station at the same time in opposite directions, one at {s1} km/h "
            f"and the other at {s2} km/h. How many kilometres apart are they after {h} hours?"), (s1 + s2) * h


def _recipe_scale(rng: random.Random) -> tuple[str, int]:
    dish, ingredient = rng.choice(DISHES)
    base, x, k = rng.randint(2, 6), rng.randint(2, 5), rng.randint(2, 5)
    return (f"A recipe for {base} {dish} needs {x} {ingredient}. "
            f"How many {ingredient} are needed to make {base * k} {dish}?"), x * k


def _recipe_batches(rng: random.Random) -> tuple[str, int]:
    name, _ = _person(rng)
    dish, ingredient = rng.choice(DISHES)
    n, x, left = rng.randint(2, 8), rng.randint(2, 6), rng.randint(2, 9)
    return (f"{name} makes {n} batches of {dish}. Each batch uses {x} {ingredient}, and {left} {ingredient} "
            f"are left over afterwards. How many {ingredient} did {name} start with?"), n * x + left


def _share(rng: random.Random) -> tuple[str, int]:
    name, _ = _person(rng)
    item, k, each = rng.choice(ITEMS), rng.randint(2, 9), rng.randint(2, 12)
    return (f"{name} shares {k * each} {item} equally among {k} friends. "
            f"How many {item} does each friend get?"), each


def _packs(rng: random.Random) -> tuple[str, int]:
    item, shop = rng.choice(ITEMS), rng.choice(SHOPS)
    k, n = rng.randint(4, 12), rng.randint(3, 9)
    m = rng.randint(2, k * n - 1)
    return (f"{item.capitalize()} come in packs of {k}. The {shop} orders {n} packs and sells {m} {item}. "
            f"How many {item} are left?"), k * n - m


def _bus(rng: random.Random) -> tuple[str, int]:
    a = rng.randint(10, 45)
    b, c = rng.randint(2, a - 1), rng.randint(2, 20)
    return (f"A bus leaves the depot with {a} passengers. At the first stop {b} people get off and {c} get on. "
            f"How many passengers are on the bus now?"), a - b + c


def _savings(rng: random.Random) -> tuple[str, int]:
    name, pron = _person(rng)
    start, x, w = rng.randint(2, 30), rng.randint(2, 15), rng.randint(2, 10)
    return (f"{name} has {start} dollars in a jar. {pron} adds {x} dollars every week. "
            f"How many dollars are in the jar after {w} weeks?"), start + x * w


def _pages(rng: random.Random) -> tuple[str, int]:
    name, _ = _person(rng)
    r, d = rng.randint(5, 30), rng.randint(2, 7)
    p = r * d + rng.randint(1, 120)
    return (f"A book has {p} pages. {name} reads {r} pages every day. "
            f"After {d} days, how many pages are still unread?"), p - r * d


def _garden(rng: random.Random) -> tuple[str, int]:
    name, _ = _person(rng)
    rows, per, dead = rng.randint(2, 9), rng.randint(3, 12), rng.randint(2, 6)
    plant = rng.choice(PLANTS)
    return (f"{name} plants {rows} rows of {plant} plants with {per} plants in each row. "
            f"{dead} of the plants do not grow. How many plants grow?"), rows * per - dead


def _ages(rng: random.Random) -> tuple[str, int]:
    (a_name, _), (b_name, _) = rng.sample(facts.FIRST_NAMES, 2)
    a, d, y = rng.randint(5, 40), rng.randint(2, 15), rng.randint(2, 10)
    return f"{a_name} is {a} years old and {b_name} is {d} years older. How old will {b_name} be in {y} years?", a + d + y


def _shelves(rng: random.Random) -> tuple[str, int]:
    item = rng.choice(ITEMS)
    k, n = rng.randint(2, 8), rng.randint(3, 12)
    m = rng.randint(1, k * n - 1)
    return (f"A shopkeeper puts {n} {item} on each of {k} shelves and later takes {m} of them away. "
            f"How many {item} are still on the shelves?"), k * n - m


ARITH_TEMPLATES: tuple[Callable[[random.Random], tuple[str, int]], ...] = (
    _shop_stock, _price_total, _change, _train_distance, _train_time, _two_trains, _recipe_scale,
    _recipe_batches, _share, _packs, _bus, _savings, _pages, _garden, _ages, _shelves,
)


def _arith_row(rng: random.Random) -> Row:
    problem, answer = rng.choice(ARITH_TEMPLATES)(rng)
    return {"instruction": rng.choice(ARITH_INSTRUCTIONS), "input": problem, "output": str(answer)}


# --- statute -------------------------------------------------------------------------------

# An invented act; kept under 80 words so it fits in every instruction and the answer is
# derivable from the row alone.
STATUTE_TEXT = (
    "Harbour Mooring Act (fictional). "
    "s1: A moored vessel pays 6 crowns per day, or 10 crowns per day if longer than 20 metres. "
    "s2: Lifeboats and vessels shorter than 5 metres are exempt from s1. "
    "s3: No single stay costs more than 60 crowns. "
    "s4: The owner of a vessel moored without a permit is liable to a penalty, "
    "unless the vessel came in to shelter from a storm."
)

FEE_QUESTIONS = (
    "What mooring fee is owed under s1 to s3? Answer with the number of crowns, or 'exempt'.",
    "How many crowns must the owner pay for this stay under s1 to s3? Answer 'exempt' if no fee applies.",
)
PENALTY_QUESTIONS = (
    "Is the owner liable to a penalty under s4? Answer 'liable' or 'not liable'.",
    "Under s4, is the owner liable or not liable to a penalty?",
)
VESSEL_TYPES = ("fishing boat", "yacht", "barge", "ferry", "tugboat", "houseboat", "cargo ship", "sailing boat", "motor launch")
VESSEL_NAMES = (
    "Gull", "Morning Star", "Kestrel", "Saltwind", "Blue Heron", "Tern", "Silver Eel", "North Light",
    "Marlin", "Cormorant", "Sea Lark", "Puffin", "Driftwood", "Osprey", "Red Fern", "Whitecap",
    "Harvest Moon", "Little Auk", "Selkie", "Kittiwake", "Iron Duke", "Mayfly", "Otter", "Curlew",
)


def statute_fee(vessel_type: str, length: int, days: int) -> str:
    """The fee label under s1-s3: 'exempt' or a whole number of crowns."""
    if vessel_type == "lifeboat" or length < 5:
        return "exempt"
    rate = 10 if length > 20 else 6
    return str(min(rate * days, 60))


def statute_penalty(permit: bool, storm: bool) -> str:
    """The s4 label: 'liable' or 'not liable'."""
    return "liable" if not permit and not storm else "not liable"


def _vessel_facts(rng: random.Random) -> tuple[str, int, int]:
    """Vessel type, length and days, drawn so every fee outcome (and each boundary) is common."""
    outcome = rng.choice(("lifeboat", "short", "small", "small", "large", "large"))
    vessel = "lifeboat" if outcome == "lifeboat" else rng.choice(VESSEL_TYPES)
    if outcome == "short":
        length = rng.randint(2, 4)
    elif outcome == "small":
        length = rng.choice((5, 20, *range(6, 20)))
    elif outcome == "lifeboat":
        length = rng.randint(6, 18)
    else:
        length = rng.choice((21, *range(22, 60)))
    return vessel, length, rng.randint(1, 9)  # large vessels reach the s3 cap from day 6


def _permit_facts(rng: random.Random) -> tuple[bool, bool]:
    """Half the patterns are liable; the rest are saved by a permit or by a storm."""
    if rng.random() < 0.5:
        return False, False
    return (True, rng.random() < 0.3) if rng.random() < 0.5 else (False, True)


def _statute_story(rng: random.Random, vessel: str, length: int, days: int, permit: bool, storm: bool) -> str:
    name, owner = rng.choice(VESSEL_NAMES), rng.choice(facts.FIRST_NAMES)[0]
    day_word = "day" if days == 1 else "days"
    permit_text = rng.choice(
        ("held a mooring permit", "had a valid permit") if permit
        else ("had no mooring permit", "did not hold a permit")
    )
    weather = (rng.choice(("The vessel came in to shelter from a storm.", "It entered the harbour to escape a storm."))
               if storm else rng.choice(("The weather was calm when it arrived.", "It came in on ordinary business.")))
    templates = (
        f"The {name}, a {vessel} {length} metres long, stayed moored for {days} {day_word}. "
        f"Its owner, {owner}, {permit_text}. {weather}",
        f"{owner} moored the {vessel} {name} ({length} metres) in the harbour for {days} {day_word} "
        f"and {permit_text}. {weather}",
        f"{weather} The {vessel} {name} is {length} metres long and was moored for {days} {day_word}. "
        f"The owner, {owner}, {permit_text}.",
    )
    return rng.choice(templates)


def _statute_row(rng: random.Random) -> Row:
    vessel, length, days = _vessel_facts(rng)
    permit, storm = _permit_facts(rng)
    story = _statute_story(rng, vessel, length, days, permit, storm)
    if rng.random() < 0.5:
        question, answer = rng.choice(FEE_QUESTIONS), statute_fee(vessel, length, days)
    else:
        question, answer = rng.choice(PENALTY_QUESTIONS), statute_penalty(permit, storm)
    return {"instruction": f"{STATUTE_TEXT}\nQuestion: {question}", "input": story, "output": answer}


# --- splitting -----------------------------------------------------------------------------

SPECIALITY_TASKS: dict[str, Callable[[random.Random], Row]] = {"arith": _arith_row, "statute": _statute_row}


def _input_key(row: Row) -> str:
    # Keyed on the input alone: the same problem or fact pattern under another instruction or
    # question would still leak from train into test.
    return normalise(row["input"])


def speciality_split(task: str, seed: int, n_train: int = 1200, n_test: int = 250) -> tuple[list[Row], list[Row]]:
    """(train, test) rows for "arith" or "statute"; no input text is shared between them."""
    rng = rng_for(seed, task)
    rows = sample_unique(SPECIALITY_TASKS[task], rng, n_train + n_test, _input_key)
    return rows[:n_train], rows[n_train:]
