"""Hand-written fact and vocabulary tables, written for this project (CC0-1.0).

Only widely known, uncontroversial facts are listed: the versatility suite must measure
what a small model already knows, so ambiguous entries (countries with several capitals,
transcontinental countries, disputed records) are deliberately left out.
"""

from __future__ import annotations

# (country, capital, continent)
COUNTRIES: tuple[tuple[str, str, str], ...] = (
    ("France", "Paris", "Europe"),
    ("Germany", "Berlin", "Europe"),
    ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"),
    ("Portugal", "Lisbon", "Europe"),
    ("the United Kingdom", "London", "Europe"),
    ("Ireland", "Dublin", "Europe"),
    ("the Netherlands", "Amsterdam", "Europe"),
    ("Belgium", "Brussels", "Europe"),
    ("Austria", "Vienna", "Europe"),
    ("Poland", "Warsaw", "Europe"),
    ("Greece", "Athens", "Europe"),
    ("Sweden", "Stockholm", "Europe"),
    ("Norway", "Oslo", "Europe"),
    ("Finland", "Helsinki", "Europe"),
    ("Denmark", "Copenhagen", "Europe"),
    ("Hungary", "Budapest", "Europe"),
    ("the Czech Republic", "Prague", "Europe"),
    ("Romania", "Bucharest", "Europe"),
    ("Ukraine", "Kyiv", "Europe"),
    ("Japan", "Tokyo", "Asia"),
    ("China", "Beijing", "Asia"),
    ("India", "New Delhi", "Asia"),
    ("South Korea", "Seoul", "Asia"),
    ("Thailand", "Bangkok", "Asia"),
    ("Vietnam", "Hanoi", "Asia"),
    ("Indonesia", "Jakarta", "Asia"),
    ("the Philippines", "Manila", "Asia"),
    ("Malaysia", "Kuala Lumpur", "Asia"),
    ("Pakistan", "Islamabad", "Asia"),
    ("Bangladesh", "Dhaka", "Asia"),
    ("Iran", "Tehran", "Asia"),
    ("Iraq", "Baghdad", "Asia"),
    ("Saudi Arabia", "Riyadh", "Asia"),
    ("Nepal", "Kathmandu", "Asia"),
    ("Mongolia", "Ulaanbaatar", "Asia"),
    ("Egypt", "Cairo", "Africa"),
    ("Kenya", "Nairobi", "Africa"),
    ("Nigeria", "Abuja", "Africa"),
    ("Ethiopia", "Addis Ababa", "Africa"),
    ("Ghana", "Accra", "Africa"),
    ("Morocco", "Rabat", "Africa"),
    ("Algeria", "Algiers", "Africa"),
    ("Senegal", "Dakar", "Africa"),
    ("Uganda", "Kampala", "Africa"),
    ("Zimbabwe", "Harare", "Africa"),
    ("the United States", "Washington", "North America"),
    ("Canada", "Ottawa", "North America"),
    ("Mexico", "Mexico City", "North America"),
    ("Cuba", "Havana", "North America"),
    ("Jamaica", "Kingston", "North America"),
    ("Brazil", "Brasilia", "South America"),
    ("Argentina", "Buenos Aires", "South America"),
    ("Chile", "Santiago", "South America"),
    ("Peru", "Lima", "South America"),
    ("Colombia", "Bogota", "South America"),
    ("Venezuela", "Caracas", "South America"),
    ("Ecuador", "Quito", "South America"),
    ("Uruguay", "Montevideo", "South America"),
    ("Australia", "Canberra", "Oceania"),
    ("New Zealand", "Wellington", "Oceania"),
    ("Fiji", "Suva", "Oceania"),
)

CONTINENTS: tuple[str, ...] = ("Africa", "Asia", "Europe", "North America", "South America", "Oceania")

# (element, symbol)
ELEMENTS: tuple[tuple[str, str], ...] = (
    ("hydrogen", "H"), ("helium", "He"), ("lithium", "Li"), ("carbon", "C"),
    ("nitrogen", "N"), ("oxygen", "O"), ("fluorine", "F"), ("neon", "Ne"),
    ("sodium", "Na"), ("magnesium", "Mg"), ("aluminium", "Al"), ("silicon", "Si"),
    ("phosphorus", "P"), ("sulfur", "S"), ("chlorine", "Cl"), ("potassium", "K"),
    ("calcium", "Ca"), ("iron", "Fe"), ("nickel", "Ni"), ("copper", "Cu"),
    ("zinc", "Zn"), ("silver", "Ag"), ("tin", "Sn"), ("iodine", "I"),
    ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"), ("uranium", "U"),
)

# (quantity, SI unit)
UNITS: tuple[tuple[str, str], ...] = (
    ("length", "metre"), ("mass", "kilogram"), ("time", "second"),
    ("electric current", "ampere"), ("temperature", "kelvin"), ("force", "newton"),
    ("energy", "joule"), ("power", "watt"), ("pressure", "pascal"),
    ("frequency", "hertz"), ("voltage", "volt"), ("electrical resistance", "ohm"),
    ("electric charge", "coulomb"), ("amount of substance", "mole"),
    ("luminous intensity", "candela"),
)

ANIMAL_CLASSES: tuple[str, ...] = ("mammal", "bird", "fish", "reptile", "amphibian", "insect")

# (animal, class)
ANIMALS: tuple[tuple[str, str], ...] = (
    ("dog", "mammal"), ("cat", "mammal"), ("whale", "mammal"), ("dolphin", "mammal"),
    ("bat", "mammal"), ("horse", "mammal"), ("elephant", "mammal"), ("cow", "mammal"),
    ("lion", "mammal"), ("rabbit", "mammal"),
    ("eagle", "bird"), ("penguin", "bird"), ("ostrich", "bird"), ("owl", "bird"),
    ("parrot", "bird"), ("sparrow", "bird"), ("duck", "bird"),
    ("shark", "fish"), ("salmon", "fish"), ("trout", "fish"), ("tuna", "fish"),
    ("goldfish", "fish"), ("cod", "fish"),
    ("snake", "reptile"), ("lizard", "reptile"), ("crocodile", "reptile"),
    ("turtle", "reptile"), ("tortoise", "reptile"),
    ("frog", "amphibian"), ("toad", "amphibian"), ("salamander", "amphibian"), ("newt", "amphibian"),
    ("bee", "insect"), ("ant", "insect"), ("butterfly", "insect"), ("beetle", "insect"),
    ("mosquito", "insect"), ("grasshopper", "insect"),
)

# (question, answer, three wrong answers of the same kind)
SCIENCE_FACTS: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("Which planet is closest to the Sun?", "Mercury", ("Jupiter", "Neptune", "Saturn")),
    ("Which planet is the largest in our solar system?", "Jupiter", ("Mercury", "Mars", "Venus")),
    ("Which planet is known as the Red Planet?", "Mars", ("Neptune", "Uranus", "Jupiter")),
    ("Which planet is famous for its bright rings?", "Saturn", ("Mercury", "Mars", "Venus")),
    ("Which planet do humans live on?", "Earth", ("Mars", "Jupiter", "Saturn")),
    ("Which planet is farthest from the Sun?", "Neptune", ("Mercury", "Venus", "Earth")),
    ("What is the star at the centre of our solar system?", "the Sun", ("the Moon", "Mars", "a comet")),
    ("What natural object orbits the Earth?", "the Moon", ("the Sun", "Jupiter", "a star")),
    ("How many planets are in our solar system?", "eight", ("three", "twenty", "fifty")),
    ("What gas do plants take in from the air to make food?", "carbon dioxide", ("helium", "neon", "argon")),
    ("What gas do humans need to breathe in to live?", "oxygen", ("helium", "neon", "argon")),
    ("What is the main gas in the air around us?", "nitrogen", ("helium", "neon", "chlorine")),
    ("At how many degrees Celsius does water boil at sea level?", "100", ("10", "37", "500")),
    ("At how many degrees Celsius does water freeze?", "0", ("50", "100", "75")),
    ("Which organ pumps blood around the body?", "the heart", ("the stomach", "the skin", "the ear")),
    ("Which organs do people use to breathe?", "the lungs", ("the kidneys", "the bones", "the ears")),
    ("Which organ do people think with?", "the brain", ("the stomach", "the liver", "the knee")),
    ("Which bone protects the brain?", "the skull", ("the rib", "the femur", "the toe")),
    ("How many legs does an insect have?", "six", ("two", "ten", "twelve")),
    ("How many legs does a spider have?", "eight", ("two", "four", "twelve")),
    ("What is the chemical formula for water?", "H2O", ("CO2", "NaCl", "O3")),
    ("What force pulls objects down towards the ground?", "gravity", ("friction", "magnetism", "wind")),
    ("What do bees make?", "honey", ("milk", "silk", "wool")),
    ("What is frozen water called?", "ice", ("steam", "sand", "salt")),
    ("What is water vapour from boiling water called?", "steam", ("ice", "snow", "dust")),
    ("Which part of a plant takes in water from the soil?", "the roots", ("the flowers", "the fruit", "the seeds")),
    ("How many days does it take the Earth to go around the Sun?", "365", ("7", "30", "1000")),
    ("How many hours are there in one day?", "24", ("12", "60", "100")),
    ("How many minutes are there in one hour?", "60", ("10", "24", "100")),
    ("What colour are the leaves of most plants?", "green", ("blue", "purple", "black")),
    ("Which state of matter has a fixed shape?", "solid", ("liquid", "gas", "steam")),
    ("What instrument measures temperature?", "a thermometer", ("a ruler", "a clock", "a compass")),
    ("What do we call animals that eat only plants?", "herbivores", ("carnivores", "predators", "scavengers")),
    ("What do we call animals that eat only meat?", "carnivores", ("herbivores", "vegetarians", "grazers")),
    ("Which metal is attracted by a magnet?", "iron", ("gold", "copper", "silver")),
    ("Which metal is liquid at room temperature?", "mercury", ("iron", "copper", "tin")),
    ("What do caterpillars grow up to become?", "butterflies", ("spiders", "frogs", "birds")),
    ("What is a young frog called?", "a tadpole", ("a puppy", "a kitten", "a calf")),
    ("What is the hardest natural material?", "diamond", ("chalk", "wood", "paper")),
    ("Which sense do people use their ears for?", "hearing", ("smell", "taste", "sight")),
    ("Which sense do people use their nose for?", "smell", ("hearing", "sight", "touch")),
    ("What do people use their eyes for?", "seeing", ("hearing", "tasting", "smelling")),
    ("Which season is usually the coldest?", "winter", ("summer", "spring", "autumn")),
    ("What falls from clouds when it rains?", "water", ("sand", "oil", "milk")),
    ("What does a compass needle point towards?", "north", ("up", "the Sun", "the sea")),
)

# Synonym groups: every word in a group can replace any other. Groups are chosen so that
# no word of one group is a near-synonym of a word in another group (distractors stay wrong).
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("big", "large", "huge"),
    ("small", "little", "tiny"),
    ("fast", "quick", "rapid"),
    ("slow", "sluggish"),
    ("happy", "glad", "cheerful"),
    ("sad", "unhappy", "gloomy"),
    ("begin", "start"),
    ("finish", "end"),
    ("smart", "clever", "intelligent"),
    ("stupid", "foolish"),
    ("angry", "furious"),
    ("calm", "peaceful"),
    ("shut", "close"),
    ("open",),
    ("sick", "ill", "unwell"),
    ("healthy", "fit"),
    ("rich", "wealthy"),
    ("poor", "needy"),
    ("buy", "purchase"),
    ("sell",),
    ("hard", "difficult"),
    ("easy", "simple"),
    ("quiet", "silent"),
    ("loud", "noisy"),
    ("scared", "afraid", "frightened"),
    ("brave", "bold", "fearless"),
    ("correct", "right"),
    ("wrong", "incorrect"),
    ("gift", "present"),
    ("shout", "yell"),
    ("jump", "leap"),
    ("choose", "pick", "select"),
    ("repair", "fix", "mend"),
    ("break", "smash"),
    ("rock", "stone"),
    ("road", "street"),
    ("story", "tale"),
    ("mistake", "error"),
    ("hot", "boiling"),
    ("cold", "freezing", "icy"),
    ("tired", "sleepy", "weary"),
    ("speak", "talk"),
    ("below", "beneath", "under"),
    ("above", "over"),
    ("strange", "odd", "weird"),
    ("normal", "ordinary", "usual"),
)

# Groups close enough in meaning that one must never be a distractor for the other.
CONFUSABLE_GROUPS: tuple[tuple[str, str], ...] = (("calm", "quiet"), ("angry", "loud"), ("strange", "stupid"))

# Pairs of synonym groups (by first word) that are opposites.
ANTONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("begin", "finish"),
    ("smart", "stupid"), ("angry", "calm"), ("shut", "open"), ("sick", "healthy"),
    ("rich", "poor"), ("buy", "sell"), ("hard", "easy"), ("quiet", "loud"),
    ("scared", "brave"), ("correct", "wrong"), ("repair", "break"), ("hot", "cold"),
    ("below", "above"), ("strange", "normal"),
)

# Category -> members; members of different categories never overlap.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "fruit": ("apple", "banana", "plum", "pear", "grape", "cherry", "mango", "lemon"),
    "animal": ("horse", "tiger", "rabbit", "monkey", "sheep", "wolf", "zebra", "goat"),
    "colour": ("red", "blue", "green", "yellow", "purple", "brown", "pink", "grey"),
    "vehicle": ("car", "bus", "bicycle", "truck", "train", "tractor", "van", "motorbike"),
    "piece of furniture": ("chair", "table", "sofa", "bed", "wardrobe", "desk", "shelf", "stool"),
    "piece of clothing": ("shirt", "jacket", "sock", "scarf", "dress", "coat", "glove", "skirt"),
    "musical instrument": ("piano", "guitar", "violin", "drum", "flute", "trumpet", "harp", "cello"),
    "part of the body": ("hand", "knee", "elbow", "shoulder", "ankle", "finger", "nose", "chin"),
    "drink": ("water", "milk", "tea", "coffee", "juice", "lemonade", "cocoa", "soda"),
    "tool": ("hammer", "saw", "spanner", "screwdriver", "drill", "chisel", "pliers", "axe"),
}

# People and places for generated reasoning and reading items.
FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("Anna", "she"), ("Ben", "he"), ("Clara", "she"), ("David", "he"), ("Emma", "she"),
    ("Felix", "he"), ("Grace", "she"), ("Henry", "he"), ("Isla", "she"), ("Jack", "he"),
    ("Kate", "she"), ("Leo", "he"), ("Maria", "she"), ("Noah", "he"), ("Olivia", "she"),
    ("Peter", "he"), ("Rosa", "she"), ("Sam", "he"), ("Tina", "she"), ("Victor", "he"),
    ("Wendy", "she"), ("Oscar", "he"), ("Lucy", "she"), ("Tom", "he"), ("Nina", "she"),
    ("Hugo", "he"), ("Julia", "she"), ("Max", "he"), ("Sara", "she"), ("Omar", "he"),
    ("Mia", "she"), ("Ravi", "he"), ("Lena", "she"), ("Carl", "he"), ("Ella", "she"),
    ("Ivan", "he"), ("Zoe", "she"), ("Adam", "he"), ("Ruth", "she"), ("Paul", "he"),
)

PLACES: tuple[str, ...] = (
    "bakery", "library", "market", "museum", "park", "station", "beach", "zoo",
    "cinema", "post office", "hospital", "school", "farm", "harbour", "garden", "bank",
)

WEEKDAYS: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

OBJECTS: tuple[str, ...] = (
    "a red umbrella", "a blue kite", "a loaf of bread", "a new hat", "a bunch of flowers",
    "a map", "a wooden box", "a green bottle", "a birthday cake", "a pair of boots",
    "a basket of eggs", "a small clock", "a toy boat", "a yellow lamp", "a silver ring",
)

# Invented nonsense nouns and properties for syllogisms: no world knowledge can help.
NONSENSE_NOUNS: tuple[str, ...] = (
    "wugs", "blickets", "daxes", "feps", "zorbs", "glims", "toves", "snarps",
    "krulls", "mibs", "plonks", "vints", "yarbs", "quisps", "drells", "fobs",
)

NONSENSE_NAMES: tuple[str, ...] = (
    "Pim", "Zak", "Lorb", "Tiv", "Nux", "Orla", "Bex", "Kip", "Yoff", "Dree", "Mox", "Fen",
)

PROPERTY_COLOURS: tuple[str, ...] = ("red", "blue", "green", "yellow", "white", "black", "orange", "purple")

PROPERTY_ABILITIES: tuple[str, ...] = ("swim", "fly", "sing", "dig", "climb", "jump", "glow", "whistle")

IRREGULAR_PLURALS: tuple[tuple[str, str], ...] = (
    ("mouse", "mice"), ("child", "children"), ("foot", "feet"), ("tooth", "teeth"),
    ("man", "men"), ("woman", "women"), ("goose", "geese"), ("person", "people"),
    ("sheep", "sheep"), ("fish", "fish"), ("leaf", "leaves"), ("knife", "knives"),
    ("wolf", "wolves"), ("half", "halves"), ("ox", "oxen"), ("cactus", "cacti"),
)
