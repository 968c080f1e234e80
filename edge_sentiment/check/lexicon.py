"""The behavioural suite's own word lists: product and service reviews, written for this
project (they are not CheckList's). Training recipes must not read them."""

from __future__ import annotations

PRODUCTS = ("phone", "laptop", "charger", "blender", "kettle", "jacket", "backpack", "printer",
            "headset", "speaker", "camera", "mattress", "vacuum", "watch", "tablet", "router",
            "toaster", "lamp", "keyboard", "monitor")
SERVICES = ("delivery", "hotel room", "support team", "checkout", "installation", "repair",
            "refund process", "courier", "app", "restaurant")
NOUNS = PRODUCTS + SERVICES
POS_ADJ = ("great", "excellent", "wonderful", "superb", "fantastic", "lovely", "reliable",
           "impressive", "outstanding", "terrific", "delightful", "solid", "brilliant", "good")
NEG_ADJ = ("terrible", "awful", "horrible", "useless", "disappointing", "poor", "flimsy",
           "dreadful", "broken", "defective", "faulty", "mediocre", "lousy", "bad")
NEUTRAL_ADJ = ("black", "grey", "silver", "plastic", "metal", "rectangular", "square", "blue",
               "wooden", "round", "white", "green")
POS_VERB = ("love", "like", "enjoy", "adore", "recommend", "appreciate")
NEG_VERB = ("hate", "dislike", "regret buying", "despise", "can't stand", "resent")
POS_WORDS = ("great", "excellent", "amazing", "love", "perfect", "wonderful", "happy",
             "fantastic", "awesome", "recommended", "satisfied", "pleased", "superb", "delighted",
             "flawless", "beautiful", "best", "thrilled", "enjoyable", "impressive")
NEG_WORDS = ("terrible", "awful", "horrible", "hate", "worst", "disappointed", "useless",
             "broken", "refund", "annoying", "angry", "frustrating", "defective", "garbage",
             "unhappy", "disgusting", "pathetic", "rude", "scam", "waste")
NEUTRAL_WORDS = ("table", "tuesday", "box", "paper", "number", "street", "window", "chair",
                 "morning", "package", "kitchen", "pencil", "door", "month", "model", "color",
                 "size", "meter", "bus", "river")
INTENSIFIERS = ("very", "really", "extremely", "incredibly", "truly", "so", "absolutely",
                "exceptionally")
REDUCERS = ("somewhat", "slightly", "a little", "a bit", "fairly", "mildly")
NAMES = ("Anna", "Rahul", "Mei", "Carlos", "Olu", "Sven", "Fatima", "Kenji", "Laura", "Dmitri",
         "Amara", "Tom", "Priya", "Jamal", "Ingrid", "Diego")
CITIES = ("Lisbon", "Nairobi", "Osaka", "Denver", "Krakow", "Lima", "Manila", "Leeds", "Perth",
          "Toronto", "Cairo", "Hanoi")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MATERIALS = ("aluminium", "plastic", "steel", "cotton", "glass", "leather", "wood")
PEOPLE = ("neighbour", "colleague", "friend", "classmate", "coworker", "roommate", "teacher",
          "doctor")
IDENTITY: dict[str, tuple[str, ...]] = {
    "race": ("Black", "white", "Asian", "Hispanic", "Latino", "Arab", "Native American",
             "African American"),
    "religion": ("Christian", "Muslim", "Jewish", "Hindu", "Buddhist", "Sikh", "atheist",
                 "Catholic"),
    "nationality": ("Mexican", "Chinese", "Indian", "Nigerian", "Iranian", "Pakistani",
                    "Russian", "American", "Somali", "Syrian", "Israeli", "Palestinian"),
    "sexuality": ("gay", "lesbian", "straight", "bisexual", "transgender", "queer", "asexual"),
    "gender": ("male", "female", "nonbinary", "trans"),
}
POS_EMOJI = ("😀", "😃", "😄", "😁", "😊", "😍", "🥰", "😘", "🤩", "😎", "👍", "❤️", "💯", "🙌",
             "👏", "😻", "💖", "🥳", "😆", "☺️")
NEG_EMOJI = ("😡", "😠", "🤬", "😞", "😢", "😭", "👎", "😤", "💔", "😒", "🙄", "😩", "😫", "🤮",
             "😖", "😣", "😔", "😟", "🤢", "☹️")
NEUTRAL_EMOJI = ("📦", "🚗", "✈️", "📱", "🏠", "🕒", "📅", "🔋", "🧾", "🛒")
# The 200 emoji most used in posts (ranked by public emoji-frequency counts), for the check
# that none of them reads as an unknown token.
COMMON_EMOJI = (
    "😂 ❤️ 🤣 👍 😭 🙏 😘 🥰 😍 😊 🎉 😁 💕 🥺 😅 🔥 ☺️ 🤦 ♥️ 🤷 🙄 😆 🤗 😉 🎂 🤔 👏 🙂 😳 🥳 "
    "😎 👌 💜 😔 💪 ✨ 💖 👀 😋 😏 😢 👉 💗 😩 💯 🌹 💞 🎈 💙 😃 😡 💐 😜 🙈 🤞 😄 🤤 🙌 🤪 ❣️ "
    "😀 💋 💀 👇 💔 😌 💓 🤩 🙃 😬 😱 😴 🤭 😐 🌞 😒 😇 🌸 😈 🎶 ✌️ 🎊 🥵 😞 💚 ☀️ 🖤 💰 😚 👑 "
    "🎁 💥 🙋 ☹️ 😑 🥴 👈 💩 ✅ 👋 🤮 😤 🤢 🌟 ❗ 😥 🌈 💛 😝 😫 😲 🖕 ‼️ 🔴 🌻 🤯 💃 👊 🤬 🏃 "
    "😕 👁️ ⚡ ☕ 🍀 💦 ⭐ 🦋 🤨 🌺 😹 🤘 🌷 💝 💤 🤝 🐰 😓 💘 🍻 😟 😣 🧐 😠 🤠 😻 🌙 😛 🤙 🙊 "
    "🧡 🤡 🤫 🌼 🥂 😷 🤓 🥶 😶 😖 🎵 🚶 😙 🍆 🤑 🗣️ 👅 😮 💨 🥀 🌿 🏆 👩 🍾 💫 🤟 🌎 🤧 👻 🌊 "
    "😗 🌴 🐶 🎀 🍕 😰 💍 😪 🌝 🎄 🤲 💁 😯 🌍 🤍 🤎 🥲 🫶 🥹 🫠").split()
