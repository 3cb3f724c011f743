"""Deterministic generator for the repo's demo catalog (raw Kaggle schema, fictional brands and products).

The real catalog is not ours to redistribute, so a fresh clone runs on this one. It mimics the real file's
shape and quirks: ``₹1,099`` prices, ``64%`` discounts, Indian-grouped counts (``1,79,691``), a ``|`` rating,
an empty rating_count, repeated product_ids, ``|``-joined category paths of varying depth and comma-joined
review fields. Discounts depend on category, brand, price, rating and popularity plus noise, so a model has
something real to learn. Regenerate with ``python -m data demo``.
"""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

from data.schema import RAW_COLUMNS

DEFAULT_SEED = 20240601
DEFAULT_PRODUCTS = 320


@dataclass(frozen=True)
class ProductType:
    key: str
    category: str
    nouns: tuple[str, ...]
    features: tuple[str, ...]
    variants: tuple[str, ...]
    price: tuple[float, float]  # actual price range in rupees
    base_discount: float  # mean discount % for this type
    about: tuple[str, ...]
    praise: tuple[str, ...]
    complaints: tuple[str, ...]


TYPES: tuple[ProductType, ...] = (
    ProductType(
        "cable", "Computers&Accessories|Accessories&Peripherals|Cables&Accessories|Cables|USBCables",
        ("USB Type-C Cable", "Micro USB Cable", "2-in-1 Type-C and Micro USB Cable", "Lightning Cable"),
        ("Nylon Braided", "Fast Charging", "3A Quick Charge", "Tangle-Free", "480Mbps Data Sync"),
        ("1 Meter, Black", "1.5 Meter, Grey", "2 Meter, Red", "Pack of 2, White"),
        (149, 1299), 58,
        ("Braided jacket survives 10,000+ bends", "Supports fast charging up to {watt}W",
         "Aluminium connector housing", "Compatible with phones, tablets and power banks",
         "Transfers data at up to 480 Mbps"),
        ("charges fast", "sturdy braided cable", "value for money", "works with both my phones"),
        ("stopped working after two months", "connector became loose", "charging is slow", "too short"),
    ),
    ProductType(
        "earphones", "Electronics|Headphones,Earbuds&Accessories|Headphones|In-Ear",
        ("Wired Earphones", "Bluetooth Neckband", "True Wireless Earbuds"),
        ("with Mic", "Deep Bass", "ENC Calling", "40H Playtime", "Low Latency Gaming Mode"),
        ("Active Black", "Ocean Blue", "Pearl White", "Raging Red"),
        (399, 4999), 62,
        ("{hours} hours of total playback", "13mm dynamic drivers for deep bass",
         "IPX5 sweat and water resistance", "Dual-mic environmental noise cancellation",
         "Type-C fast charging: 10 minutes gives 120 minutes of play"),
        ("great bass", "battery lasts long", "comfortable fit", "clear calls"),
        ("left earbud stopped working", "mic quality is poor", "connection drops", "case feels cheap"),
    ),
    ProductType(
        "headphones", "Electronics|Headphones,Earbuds&Accessories|Headphones|Over-Ear",
        ("Wireless Over-Ear Headphones", "On-Ear Bluetooth Headphones", "Active Noise Cancelling Headphones"),
        ("with Mic", "Hybrid ANC", "50H Battery", "Foldable Design"),
        ("Midnight Black", "Sage Green", "Cream"),
        (1299, 14999), 55,
        ("Up to {hours} hours of playback", "40mm drivers tuned for balanced sound",
         "Soft memory-foam ear cushions", "Multipoint connection to two devices"),
        ("excellent noise cancellation", "very comfortable for long hours", "rich sound"),
        ("ear cushions peel off", "heavy on the head", "ANC is average", "hinge cracked"),
    ),
    ProductType(
        "smartwatch", "Electronics|WearableTechnology|SmartWatches",
        ("Smart Watch", "Fitness Band", "Calling Smartwatch"),
        ("1.8 inch HD Display", "Bluetooth Calling", "SpO2 and Heart Rate Monitor", "100+ Sports Modes"),
        ("Jet Black", "Rose Gold", "Silver Grey", "Olive Green"),
        (1499, 9999), 70,
        ("{hours}-day battery life", "Always-on AMOLED display", "IP68 water resistance",
         "Tracks sleep, steps, SpO2 and heart rate"),
        ("battery life is great", "display is bright", "accurate step count"),
        ("heart rate readings are off", "strap broke", "app keeps disconnecting", "calls drop"),
    ),
    ProductType(
        "tv", "Electronics|HomeTheater,TV&Video|Televisions|SmartTelevisions",
        ("HD Ready Smart LED TV", "4K Ultra HD Smart LED TV", "Full HD Android TV"),
        ("80 cm (32 inches)", "108 cm (43 inches)", "126 cm (50 inches)", "139 cm (55 inches)"),
        ("Black", "Bezel-less Black"),
        (11999, 64999), 38,
        ("Dolby Audio with {watt}W speakers", "Built-in Wi-Fi and screen mirroring",
         "3 HDMI and 2 USB ports", "Supports popular OTT apps"),
        ("picture quality is great", "easy installation", "smooth interface"),
        ("sound is low", "remote stopped working", "installation was delayed", "apps lag"),
    ),
    ProductType(
        "phone", "Electronics|Mobiles&Accessories|Smartphones&BasicMobiles|Smartphones",
        ("5G Smartphone", "Smartphone", "4G Smartphone"),
        ("6GB RAM, 128GB Storage", "4GB RAM, 64GB Storage", "8GB RAM, 256GB Storage"),
        ("Midnight Blue", "Glacier White", "Forest Green"),
        (7999, 34999), 18,
        ("{hours}00 mAh battery with fast charging", "50MP AI triple camera",
         "6.6 inch 120Hz display", "Octa-core processor"),
        ("camera is good in daylight", "battery easily lasts a day", "smooth performance"),
        ("heats up while gaming", "too much bloatware", "low light photos are poor"),
    ),
    ProductType(
        "charger", "Electronics|Mobiles&Accessories|MobileAccessories|Chargers|WallChargers",
        ("Fast Wall Charger", "Dual Port Charger", "GaN Charger"),
        ("20W PD", "33W Quick Charge", "65W", "with Type-C Cable"),
        ("White", "Black"),
        (349, 2999), 52,
        ("Delivers up to {watt}W output", "Over-voltage and short-circuit protection", "Compact travel size"),
        ("charges quickly", "compact", "does not heat up"),
        ("gets very hot", "stopped working in a month", "slow with my phone"),
    ),
    ProductType(
        "mouse", "Computers&Accessories|Accessories&Peripherals|Keyboards,Mice&InputDevices|Mice",
        ("Wireless Mouse", "Wired Optical Mouse", "Ergonomic Vertical Mouse"),
        ("2.4GHz", "1600 DPI", "Silent Click", "Rechargeable"),
        ("Black", "Grey", "Blue"),
        (249, 2499), 48,
        ("Adjustable DPI up to {watt}00", "Plug and play USB receiver", "Comfortable ergonomic grip"),
        ("smooth tracking", "silent clicks", "comfortable to hold"),
        ("scroll wheel broke", "receiver lost easily", "double clicks on its own"),
    ),
    ProductType(
        "pendrive", "Computers&Accessories|ExternalDevices&DataStorage|PenDrives",
        ("USB 3.2 Flash Drive", "Dual Drive Pen Drive", "Metal Pen Drive"),
        ("32GB", "64GB", "128GB", "256GB"),
        ("Silver", "Black"),
        (299, 3499), 45,
        ("Read speeds up to {watt}0 MB/s", "Type-C and Type-A connectors", "Five-year warranty"),
        ("fast transfer", "compact and sturdy"),
        ("write speed is slow", "gets hot", "capacity is less than advertised"),
    ),
    ProductType(
        "kettle", "Home&Kitchen|Kitchen&HomeAppliances|SmallKitchenAppliances|Kettles&HotWaterDispensers|ElectricKettles",
        ("Electric Kettle", "Stainless Steel Electric Kettle", "Multi-Cook Electric Kettle"),
        ("1.5 Litre", "1.8 Litre", "1 Litre", "1500W"),
        ("Silver", "Black"),
        (599, 3499), 42,
        ("Boils water in {hours} minutes", "Auto shut-off and boil-dry protection",
         "Food-grade stainless steel body", "360-degree swivel base"),
        ("boils very fast", "easy to clean", "good for travel"),
        ("lid does not close properly", "handle gets hot", "plastic smell initially", "leaks from the base"),
    ),
    ProductType(
        "mixer", "Home&Kitchen|Kitchen&HomeAppliances|SmallKitchenAppliances|MixerGrinders",
        ("Mixer Grinder", "Juicer Mixer Grinder", "Hand Blender"),
        ("500W", "750W", "3 Jars", "with Whisk"),
        ("White and Blue", "Black", "Red"),
        (999, 7999), 40,
        ("{watt}0W copper motor", "Stainless steel blades", "Overload protection", "Two-year warranty"),
        ("grinds quickly", "powerful motor", "jars are sturdy"),
        ("very noisy", "jar lid leaks", "motor heats up", "vibrates a lot"),
    ),
    ProductType(
        "heater", "Home&Kitchen|Heating,Cooling&AirQuality|RoomHeaters|FanHeaters",
        ("Room Heater", "Fan Heater", "Oil Filled Radiator"),
        ("2000W", "with 2 Heat Settings", "with Thermostat"),
        ("White", "Grey"),
        (899, 12999), 45,
        ("{watt}00W heating with two settings", "Overheat protection", "Adjustable thermostat",
         "Silent operation"),
        ("heats the room quickly", "silent operation", "compact"),
        ("makes noise", "trips the switch", "smells when turned on"),
    ),
    ProductType(
        "iron", "Home&Kitchen|Kitchen&HomeAppliances|Vacuum,Cleaning&Ironing|Irons,Steamers&Accessories|Irons|DryIrons",
        ("Dry Iron", "Steam Iron", "Lightweight Dry Iron"),
        ("1000W", "1200W", "Non-Stick Soleplate"),
        ("White and Blue", "Purple"),
        (499, 2999), 35,
        ("{watt}00W for quick heating", "Non-stick coated soleplate", "Adjustable temperature control"),
        ("heats quickly", "lightweight", "glides smoothly"),
        ("cord is too short", "soleplate scratches", "temperature knob is loose"),
    ),
    ProductType(
        "pens", "OfficeProducts|OfficePaperProducts|Paper|Stationery|Pens,Pencils&WritingSupplies|Pens&Refills|GelInkRollerballPens",
        ("Gel Pens", "Ball Pens", "Fineliner Pens"),
        ("0.5mm Tip", "Smooth Writing", "Quick-Dry Ink", "Rubber Grip"),
        ("Pack of 10, Blue", "Pack of 20, Black", "Pack of 5, Assorted Colours"),
        (50, 599), 15,
        ("Smooth {watt}0-page writing length", "Quick-drying ink", "Comfortable rubber grip"),
        ("writes smoothly", "good for exams", "bright colours"),
        ("ink smudges", "some pens were dry", "refill finishes fast"),
    ),
)

BRANDS: dict[str, tuple[tuple[str, float], ...]] = {
    # (brand, brand discount offset in points)
    "cable": (("Wirefy", 8), ("Chargix", 4), ("Voltrek", -6), ("Linqo", 0), ("Zentro", 10)),
    "earphones": (("Sonique", 6), ("Bassbolt", 12), ("Auralis", -10), ("Zentro", 8), ("Tunemate", 0)),
    "headphones": (("Sonique", 4), ("Auralis", -12), ("Hushwave", 0), ("Bassbolt", 10)),
    "smartwatch": (("Pulsefit", 6), ("Chronix", 0), ("Fitvolt", 10), ("Auralis", -15)),
    "tv": (("Visiona", 6), ("Lumetra", -8), ("Orbix", 2)),
    "phone": (("Nexora", 2), ("Lumetra", -4), ("Orbix", 6)),
    "charger": (("Chargix", 6), ("Voltrek", -8), ("Wirefy", 8), ("Ampora", 0)),
    "mouse": (("Clickly", 4), ("Voltrek", -6), ("Linqo", 6)),
    "pendrive": (("Storix", -4), ("Datavault", 6), ("Linqo", 2)),
    "kettle": (("Kitchoo", 6), ("Brewmate", 0), ("Homelux", -8)),
    "mixer": (("Kitchoo", 4), ("Grindwell", 0), ("Homelux", -6)),
    "heater": (("Warmly", 4), ("Homelux", -6), ("Heatwave", 8)),
    "iron": (("Pressmate", 0), ("Homelux", -6), ("Smootho", 6)),
    "pens": (("Inkwell", -2), ("Scriptix", 4), ("Penmark", 0)),
}

FIRST_NAMES = ("Aarav", "Priya", "Rohit", "Sneha", "Vikram", "Ananya", "Karthik", "Meera", "Arjun", "Divya",
               "Rahul", "Pooja", "Suresh", "Kavya", "Nikhil", "Lakshmi", "Imran", "Farah", "Joseph", "Gurpreet")
POSITIVE_TITLES = ("Value for money", "Good product", "Excellent", "Worth it", "Very good", "Satisfied",
                   "Nice quality", "Happy with the purchase")
NEGATIVE_TITLES = ("Not as expected", "Average", "Disappointed", "Could be better", "Quality issue")


def indian_grouping(n: int) -> str:
    """1234567 -> '12,34,567' (the Indian digit grouping used by the real file)."""
    s = str(int(n))
    if len(s) <= 3:
        return s
    head, tail = s[:-3], s[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return ",".join(groups + [tail])


def western_grouping(n: int) -> str:
    return f"{int(n):,}"


def rupees(amount: float) -> str:
    return "₹" + western_grouping(round(amount))


def _round_price(x: float) -> float:
    """Round to a marketing price: ...49 / ...99 endings."""
    if x < 100:
        return float(max(9, round(x / 5) * 5 - 1))
    if x < 1000:
        return float(round(x / 50) * 50 - 1)
    return float(round(x / 100) * 100 - 1)


def _id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "B0" + "".join(rng.choice(alphabet) for _ in range(8))


def _review_id(rng: random.Random) -> str:
    return "R" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))


def _user_id(rng: random.Random) -> str:
    return "A" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(27))


def _product_row(rng: random.Random, ptype: ProductType, brand: str, brand_offset: float,
                 used_names: set[str]) -> dict[str, str]:
    for _ in range(20):
        model = f"{rng.choice(('Pro', 'Lite', 'Max', 'Neo', 'Air', 'Plus', 'X', 'Go'))} {rng.randint(1, 9)}{rng.choice(('0', '5', '00', '50'))}"
        noun = rng.choice(ptype.nouns)
        feats = rng.sample(ptype.features, k=min(2, len(ptype.features)))
        variant = rng.choice(ptype.variants)
        name = f"{brand} {model} {noun} {', '.join(feats)} ({variant})"
        if name not in used_names:
            used_names.add(name)
            break
    lo, hi = ptype.price
    actual = _round_price(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    rating = min(5.0, max(2.5, rng.gauss(4.05, 0.28)))
    rating = round(rating, 1)
    count = int(math.exp(rng.gauss(7.5, 1.9)))
    price_pos = (math.log(actual) - math.log(lo)) / max(1e-9, math.log(hi) - math.log(lo))
    discount = (ptype.base_discount + brand_offset + 10 * (price_pos - 0.5) - 6 * (rating - 4.0)
                + 1.5 * (math.log1p(count) - 7.5) + rng.gauss(0, 6))
    discount = int(round(min(90, max(0, discount))))
    discounted = max(1.0, round(actual * (1 - discount / 100)))
    # report the discount as the real file does: rounded from the two prices
    discount = int(round(100 * (1 - discounted / actual)))
    fill = {"watt": rng.choice((10, 18, 20, 33, 45, 65)), "hours": rng.choice((3, 5, 7, 10, 24, 30, 40, 60))}
    bullets = rng.sample(ptype.about, k=min(len(ptype.about), rng.randint(3, 4)))
    about = "|".join(b.format(**fill) for b in bullets) + f"|Warranty: {rng.choice((6, 12, 24))} months from {brand}"
    n_reviews = rng.randint(3, 8)
    good_share = min(0.95, max(0.2, (rating - 2.5) / 2.5))
    titles, contents, ids, users, names = [], [], [], [], []
    for _ in range(n_reviews):
        if rng.random() < good_share:
            titles.append(rng.choice(POSITIVE_TITLES))
            body = f"{rng.choice(ptype.praise).capitalize()}. {rng.choice(('Recommended.', 'Happy with it.', 'Good for the price.', 'Delivery was quick.'))}"
        else:
            titles.append(rng.choice(NEGATIVE_TITLES))
            body = f"{rng.choice(ptype.complaints).capitalize()}, {rng.choice(('expected better', 'not happy', 'returned it', 'okay for the price'))}."
        contents.append(body)
        ids.append(_review_id(rng))
        users.append(_user_id(rng))
        names.append(rng.choice(FIRST_NAMES))
    grouped = indian_grouping if rng.random() < 0.5 else western_grouping
    pid = _id(rng)
    return {
        "product_id": pid,
        "product_name": name,
        "category": ptype.category,
        "discounted_price": rupees(discounted),
        "actual_price": rupees(actual),
        "discount_percentage": f"{discount}%",
        "rating": f"{rating:.1f}" if rng.random() < 0.85 else f"{rating:g}",
        "rating_count": grouped(count),
        "about_product": about,
        "user_id": ",".join(users),
        "user_name": ",".join(names),
        "review_id": ",".join(ids),
        "review_title": ",".join(titles),
        "review_content": ",".join(contents),
        "img_link": f"https://example.invalid/images/{pid}.jpg",
        "product_link": f"https://example.invalid/dp/{pid}",
    }


def generate_demo_rows(n_products: int = DEFAULT_PRODUCTS, seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """Rows in the raw schema: ``n_products`` products plus ~7% repeated listings and a few quirky cells."""
    rng = random.Random(seed)
    used: set[str] = set()
    rows = []
    for i in range(n_products):
        ptype = TYPES[i % len(TYPES)] if i < len(TYPES) * 2 else rng.choice(TYPES)
        brand, offset = rng.choice(BRANDS[ptype.key])
        rows.append(_product_row(rng, ptype, brand, offset, used))
    # quirks seen in the real file
    rows[7]["rating"] = "|"
    rows[11]["rating_count"] = ""
    rows[23]["rating_count"] = ""
    # repeated listings: same product_id, same product, possibly different reviews
    for src in rng.sample(range(n_products), k=max(1, n_products * 7 // 100)):
        dup = dict(rows[src])
        if rng.random() < 0.5:
            dup["review_id"] = ",".join(_review_id(rng) for _ in dup["review_id"].split(","))
        rows.append(dup)
    rng.shuffle(rows)
    return rows


def write_demo_catalog(path: str | Path, n_products: int = DEFAULT_PRODUCTS, seed: int = DEFAULT_SEED) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = generate_demo_rows(n_products, seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(RAW_COLUMNS), quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)
    return path
