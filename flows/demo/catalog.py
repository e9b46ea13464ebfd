"""Static description of the demo world: regions, product catalogue, event types and world sizes.

Only the demo generator reads this module. The job itself never sees these names: it learns regions,
SKUs and event types from the drop, so a real retailer's drop goes through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RegionSpec:
    """A merchandising region: where it is and which weather it gets."""

    name: str
    states: tuple[tuple[str, str], ...]  # (state code, postal code prefix); prefixes keep leading zeros
    tz: str  # IANA zone: online order timestamps carry its UTC offset (DST included)
    lat: float
    lon: float
    coastal: bool = False
    northern: bool = False
    hot: bool = False


# fmt: off
# Ordered so that the first four (the `small` world) already hold coastal, northern and hot regions.
REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec("GULF_COAST", (("TX", "77"), ("LA", "70"), ("MS", "39"), ("AL", "36")),
               "America/Chicago", 29.9, -92.5, coastal=True, hot=True),
    RegionSpec("NORTHEAST", (("MA", "021"), ("NH", "030"), ("ME", "040"), ("VT", "056")),
               "America/New_York", 43.2, -71.4, northern=True),
    RegionSpec("DESERT_SOUTHWEST", (("AZ", "85"), ("NV", "89")), "America/Phoenix", 33.9, -113.0, hot=True),
    RegionSpec("ATLANTIC_COAST", (("FL", "32"), ("GA", "31"), ("SC", "29")),
               "America/New_York", 30.8, -81.6, coastal=True),
    RegionSpec("GREAT_LAKES", (("MI", "48"), ("WI", "53"), ("MN", "55")),
               "America/Chicago", 44.3, -88.0, northern=True),
    RegionSpec("HEARTLAND", (("KS", "66"), ("MO", "64"), ("NE", "68")), "America/Chicago", 39.0, -95.7),
    RegionSpec("MID_ATLANTIC", (("NJ", "07"), ("DE", "19"), ("MD", "21")),
               "America/New_York", 39.6, -75.2, coastal=True, northern=True),
    RegionSpec("MOUNTAIN", (("CO", "80"), ("UT", "84")), "America/Denver", 39.9, -107.5, northern=True),
)
# fmt: on

# Postal prefixes of places the chain has no region for: ~1% of online orders ship there.
FOREIGN_POSTAL_PREFIXES: tuple[str, ...] = ("995", "967", "006", "008")


@dataclass(frozen=True)
class CategorySpec:
    """One product category: how its SKU names are made and how its demand behaves."""

    name: str
    brands: tuple[str, ...]
    items: tuple[tuple[str, str, tuple[str, ...]], ...]  # (subcategory, noun, variants)
    sizes: tuple[tuple[str, float], ...]  # (size label, price multiplier)
    price: float  # regular price of the first size
    popularity: float  # log-mean units per store-day of the category's SKUs
    yearly_amp: float  # relative amplitude of the yearly cycle
    peak_doy: int  # day of year of the yearly peak
    weekend: float = 1.0  # extra weight on Friday/Saturday
    weight: float = 1.0  # share of the catalogue
    # role -> (brand, noun, variant, size): SKUs the planted patterns use, always in the catalogue
    anchors: tuple[tuple[str, tuple[str, str, str, str]], ...] = ()


# fmt: off
CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("breakfast", ("Kellman's", "Morning Mill", "Sunrise Farms"),
                 (("toaster_pastries", "Frosted Toaster Pastries",
                   ("Strawberry", "Brown Sugar Cinnamon", "Blueberry", "Chocolate Fudge", "Cherry",
                    "Wild Berry")),
                  ("cereal", "Cereal", ("Honey Oat", "Corn Flakes", "Cocoa Crunch", "Fruit Rings",
                                        "Granola")),
                  ("oatmeal", "Instant Oatmeal", ("Maple Brown Sugar", "Apple Cinnamon", "Original"))),
                 (("8ct", 1.0), ("12ct", 1.4)), 3.49, -0.3, 0.05, 30,
                 anchors=(("pastry", ("Kellman's", "Frosted Toaster Pastries", "Strawberry", "8ct")),)),
    CategorySpec("beer", ("Riverbend Brewing", "Old Harbor", "Copper Kettle", "Lakeshore"),
                 (("lager", "Lager", ("Classic", "Light", "Amber")),
                  ("ipa", "IPA", ("Hazy", "West Coast", "Session")),
                  ("seltzer", "Hard Seltzer", ("Lime", "Black Cherry", "Mango"))),
                 (("6pk 12oz", 1.0), ("12pk 12oz", 1.8), ("24pk 12oz", 3.2)), 9.99, 0.0, 0.25, 190,
                 weekend=1.5, weight=1.3,
                 anchors=(("beer1", ("Riverbend Brewing", "Lager", "Light", "12pk 12oz")),
                          ("beer2", ("Old Harbor", "Lager", "Classic", "24pk 12oz")))),
    CategorySpec("water", ("Clearspring", "Blue Ridge", "Aqua Pura"),
                 (("still", "Spring Water", ("Natural",)), ("purified", "Purified Water", ("Natural",)),
                  ("sparkling", "Sparkling Water", ("Lime", "Lemon", "Unflavored", "Berry"))),
                 (("24pk 16.9oz", 1.0), ("1 gal", 0.35), ("6pk 1L", 0.8), ("12pk 12oz", 0.9)),
                 5.49, 0.1, 0.3, 200,
                 anchors=(("water1", ("Clearspring", "Spring Water", "Natural", "24pk 16.9oz")),
                          ("water2", ("Blue Ridge", "Purified Water", "Natural", "1 gal")))),
    CategorySpec("snacks", ("Crunchwell", "Golden Acre", "Snack Shack", "Prairie Pop"),
                 (("chips", "Potato Chips", ("Classic", "Sour Cream & Onion", "BBQ", "Salt & Vinegar")),
                  ("tortilla", "Tortilla Chips", ("Restaurant Style", "Lime", "Nacho Cheese")),
                  ("pretzels", "Pretzels", ("Twists", "Rods")),
                  ("popcorn", "Popcorn", ("Butter", "Kettle Corn"))),
                 (("8oz", 1.0), ("family size 13oz", 1.5)), 3.99, -0.1, 0.06, 35, weekend=1.2, weight=1.3,
                 anchors=(("chips1", ("Crunchwell", "Potato Chips", "Classic", "family size 13oz")),
                          ("chips2", ("Golden Acre", "Tortilla Chips", "Restaurant Style",
                                      "family size 13oz")))),
    CategorySpec("bread", ("Hearthstone", "Baker's Pride", "Village Oven"),
                 (("loaf", "Sandwich Bread", ("White", "Whole Wheat", "Honey Wheat", "Multigrain", "Potato")),
                  ("buns", "Buns", ("Hamburger", "Hot Dog", "Brioche")),
                  ("bagels", "Bagels", ("Plain", "Everything", "Cinnamon Raisin"))),
                 (("20oz", 1.0), ("24oz", 1.2)), 2.99, 0.3, 0.05, 20,
                 anchors=(("bread1", ("Hearthstone", "Sandwich Bread", "White", "20oz")),
                          ("bread2", ("Baker's Pride", "Sandwich Bread", "Whole Wheat", "20oz")))),
    CategorySpec("dairy", ("Green Pasture", "Dairy Valley", "Hillcrest"),
                 (("milk", "Milk", ("Whole", "2% Reduced Fat", "1% Low Fat", "Skim")),
                  ("yogurt", "Greek Yogurt", ("Plain", "Vanilla", "Strawberry")),
                  ("cheese", "Shredded Cheese", ("Cheddar", "Mozzarella", "Mexican Blend")),
                  ("butter", "Butter", ("Salted", "Unsalted"))),
                 (("1 gal", 1.0), ("half gal", 0.6)), 3.79, 0.4, 0.04, 350, weight=1.2,
                 anchors=(("milk1", ("Green Pasture", "Milk", "Whole", "1 gal")),
                          ("milk2", ("Dairy Valley", "Milk", "2% Reduced Fat", "1 gal")))),
    CategorySpec("frozen", ("Polar Creamery", "Frosty Farms", "Napoli Kitchen"),
                 (("ice_cream", "Ice Cream",
                   ("Vanilla", "Chocolate", "Cookies & Cream", "Strawberry", "Mint Chip", "Butter Pecan")),
                  ("pizza", "Frozen Pizza", ("Pepperoni", "Cheese", "Supreme")),
                  ("vegetables", "Frozen Vegetables", ("Peas", "Broccoli", "Mixed"))),
                 (("48oz", 1.0), ("16oz", 0.5)), 5.99, -0.2, 0.3, 200,
                 anchors=(("icecream1", ("Polar Creamery", "Ice Cream", "Vanilla", "48oz")),
                          ("icecream2", ("Frosty Farms", "Ice Cream", "Chocolate", "48oz")))),
    CategorySpec("household", ("HomeBright", "TidyHouse", "Sparkle"),
                 (("paper", "Paper Towels", ("Select-a-Size", "Regular")),
                  ("tissue", "Bath Tissue", ("Double Roll", "Mega Roll")),
                  ("bags", "Trash Bags", ("13 gal", "30 gal")),
                  ("detergent", "Laundry Detergent", ("Original", "Free & Clear", "Lavender")),
                  ("dish", "Dish Soap", ("Lemon", "Original"))),
                 (("6ct", 1.0), ("12ct", 1.8)), 8.99, -0.5, 0.03, 0),
    CategorySpec("batteries", ("VoltMax", "PowerCell", "EverOn"),
                 (("alkaline", "Alkaline Batteries", ("AA", "AAA", "C", "D", "9V")),
                  ("lighting", "LED Flashlight", ("Compact", "Lantern"))),
                 (("4pk", 1.0), ("8pk", 1.7), ("16pk", 3.0)), 6.99, -1.0, 0.05, 340, weight=0.8,
                 anchors=(("batt1", ("VoltMax", "Alkaline Batteries", "AA", "8pk")),
                          ("batt2", ("PowerCell", "Alkaline Batteries", "D", "4pk")))),
    CategorySpec("canned", ("Harvest Table", "Campfire", "Coastal Catch"),
                 (("soup", "Soup", ("Chicken Noodle", "Tomato", "Vegetable Beef", "Clam Chowder")),
                  ("beans", "Beans", ("Black", "Pinto", "Baked")),
                  ("tuna", "Tuna", ("Chunk Light", "Albacore"))),
                 (("15oz", 1.0), ("4pk 15oz", 3.5)), 1.89, -0.3, 0.25, 15),
    CategorySpec("beverages", ("FizzCo", "Hydra", "Orchard Fresh", "Summit Cola"),
                 (("soda", "Soda", ("Cola", "Diet Cola", "Lemon Lime", "Root Beer", "Orange")),
                  ("sports", "Sports Drink", ("Fruit Punch", "Lemon Lime", "Glacier")),
                  ("juice", "Juice", ("Orange", "Apple", "Cranberry"))),
                 (("12pk 12oz", 1.0), ("2L", 0.35), ("6pk 20oz", 0.9)), 6.49, 0.0, 0.15, 195,
                 weekend=1.15, weight=1.3),
    CategorySpec("personal_care", ("SunGuard", "PureSkin", "Fresh Day"),
                 (("sunscreen", "Sunscreen", ("SPF 30", "SPF 50", "Sport SPF 50")),
                  ("deodorant", "Deodorant", ("Fresh", "Unscented")),
                  ("shampoo", "Shampoo", ("Daily", "Volume", "Dandruff"))),
                 (("8oz", 1.0), ("2pk", 1.8)), 7.99, -1.0, 0.2, 190, weight=0.8),
    CategorySpec("baking", ("Golden Mill", "Sweet Acre", "Hearthstone"),
                 (("flour", "Flour", ("All Purpose", "Bread", "Whole Wheat")),
                  ("sugar", "Sugar", ("Granulated", "Brown", "Powdered")),
                  ("mixes", "Cake Mix", ("Yellow", "Chocolate", "Funfetti"))),
                 (("2lb", 1.0), ("5lb", 2.0)), 3.29, -0.9, 0.35, 350, weight=0.7),
    CategorySpec("pet", ("Happy Tails", "Whisker Co"),
                 (("dog", "Dog Food", ("Chicken & Rice", "Beef", "Puppy")),
                  ("cat", "Cat Litter", ("Clumping", "Unscented")),
                  ("treats", "Dog Treats", ("Bacon", "Peanut Butter"))),
                 (("15lb", 1.0), ("30lb", 1.8)), 14.99, -1.1, 0.02, 0, weight=0.6),
)
# fmt: on


@dataclass(frozen=True)
class EventTypeSpec:
    """An event type: which regions it strikes, when, for how long, and what it does to demand."""

    name: str
    where: str  # region flag ("coastal", "northern", "hot"), "some" (a random half) or "ALL"
    season: tuple[tuple[int, int], tuple[int, int]]  # ((month, day), (month, day)); may wrap the year
    per_season: tuple[int, int]  # extra events per region and season once each has the minimum
    days: tuple[int, int]  # duration start_date..end_date in days, inclusive range
    lifts: tuple[tuple[str, float], ...] = ()  # (anchor role, mean lift over the window); () = no effect
    label: str = ""
    multi_region_share: float = 0.0  # share of events that also strike a second eligible region
    month_start: bool = False  # events start on the 1st of a month (paydays)


# fmt: off
EVENT_TYPES: tuple[EventTypeSpec, ...] = (
    EventTypeSpec("hurricane", "coastal", ((6, 1), (11, 15)), (0, 1), (4, 5),
                  (("pastry", 7.0), ("beer1", 2.5), ("beer2", 2.5), ("water1", 4.0), ("water2", 4.0),
                   ("batt1", 3.0), ("batt2", 3.0)), "Hurricane", multi_region_share=0.3),
    EventTypeSpec("winter_storm", "northern", ((12, 1), (3, 15)), (0, 1), (2, 4),
                  (("bread1", 2.5), ("bread2", 2.5), ("milk1", 2.5), ("milk2", 2.5)), "Winter Storm"),
    EventTypeSpec("heat_wave", "hot", ((5, 15), (9, 30)), (0, 1), (4, 6),
                  (("water1", 2.0), ("water2", 2.0), ("icecream1", 2.0), ("icecream2", 2.0)), "Heat Wave"),
    # no effect at all: a well-run miner must not report them. Grid drills are held on the 1st of a
    # month, on paydays (a miner blind to paydays sees a lift); summer fairs fall in the summer peak of
    # water, ice cream and beer in the hot regions (a miner blind to season sees a lift)
    EventTypeSpec("power_outage_drill", "some", ((1, 10), (12, 10)), (0, 1), (2, 3), (), "Grid Drill",
                  month_start=True),
    EventTypeSpec("summer_fair", "hot", ((5, 1), (9, 30)), (0, 0), (2, 3), (), "Summer Fair"),
)
HOLIDAY_LIFTS: tuple[tuple[str, float], ...] = (
    ("beer1", 1.8), ("beer2", 1.8), ("chips1", 1.6), ("chips2", 1.6),
)
HURRICANE_NAMES: tuple[str, ...] = (
    "Alma", "Bertrand", "Celia", "Dorian", "Elsa", "Fabian", "Greta", "Hector", "Imelda", "Julio",
    "Kira", "Lorenzo", "Mara", "Nestor", "Odette", "Pablo", "Rosa", "Sergio", "Tanya", "Victor",
)
# fmt: on


@dataclass(frozen=True)
class SizeSpec:
    """How big a demo world is."""

    regions: int
    stores_per_region: tuple[int, int]  # inclusive range
    skus: int
    postal_per_region: int
    latent: int  # planted latent-demand (region, SKU) pairs
    affinity_skus: int  # SKUs with a planted regional taste (one region up, one down)
    batch_cells: int  # store x SKU x day cells per generation batch: bounds memory for `large`
    days: int = 731  # days of history, ending at the world's as-of date


SIZE_SPECS: dict[str, SizeSpec] = {
    "small": SizeSpec(4, (3, 4), 120, 60, 4, 3, 4_000_000),
    "medium": SizeSpec(6, (5, 7), 300, 120, 6, 4, 6_000_000),
    "large": SizeSpec(8, (12, 14), 600, 200, 8, 6, 3_000_000),
    # the M5 competition's shape: 72 stores x 420 SKUs x 1,941 days (about 32 million store-sales rows)
    "m5": SizeSpec(8, (9, 9), 420, 200, 8, 6, 3_000_000, days=1941),
}


def scaled_size(stores: int, skus: int, days: int) -> str:
    """Return the size name of a world of ``stores`` stores, ``skus`` SKUs and ``days`` days
    (``"72x420x1941"``): `size_spec` reads the shape back from the name, so a world stays a function of
    (size, seed) with no registry of custom sizes."""
    return f"{stores}x{skus}x{days}"


def size_spec(size: str) -> SizeSpec:
    """Return the spec of a named size (SIZE_SPECS) or of a ``STORESxSKUSxDAYS`` name (see scaled_size):
    the stores spread evenly over the most regions (up to 8) that divide their count, the rest as in
    `m5`. Raises ValueError otherwise."""
    if size in SIZE_SPECS:
        return SIZE_SPECS[size]
    try:
        stores, skus, days = (int(n) for n in size.split("x"))
    except ValueError:
        raise ValueError(
            f"unknown demo size {size!r}; expected one of {sorted(SIZE_SPECS)} or S x K x D"
        ) from None
    if stores < 1 or skus < 60 or days < 400:
        raise ValueError(
            f"demo size {size!r}: need >= 1 store, >= 60 SKUs (the catalogue's anchors), >= 400 days"
        )
    # every region gets the same number of stores: as many regions (up to 8) as divide the count
    regions = max(r for r in range(1, len(REGIONS) + 1) if stores % r == 0)
    per_region = stores // regions
    return replace(
        SIZE_SPECS["m5"], regions=regions, stores_per_region=(per_region, per_region), skus=skus, days=days
    )
