"""Text resources for the synthetic data generator: sentence frames and small vocabularies.

Frames are ``str.format`` strings whose ``{slot}`` names are filled by :mod:`.synth` (mostly from
Faker: names, cities, companies, jobs, streets). Everything here is hand-written for this project.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Small vocabularies (things Faker has no provider for)
# ---------------------------------------------------------------------------------------------
DISHES = [
    "lasagna",
    "pad thai",
    "shakshuka",
    "ramen",
    "chicken curry",
    "mushroom risotto",
    "tacos",
    "banana bread",
    "paella",
    "dumplings",
    "lentil soup",
    "pho",
    "carbonara",
    "falafel wraps",
    "a veggie stir fry",
    "butter chicken",
    "sourdough pizza",
    "bibimbap",
    "fish pie",
    "gnocchi",
]
HOBBIES = [
    "pottery",
    "rock climbing",
    "salsa dancing",
    "watercolor painting",
    "chess",
    "bouldering",
    "birdwatching",
    "knitting",
    "photography",
    "baking",
    "surfing",
    "gardening",
    "woodworking",
    "journaling",
    "running",
    "yoga",
    "board games",
    "calligraphy",
    "fishing",
    "skateboarding",
]
INSTRUMENTS = ["cello", "ukulele", "drums", "piano", "violin", "bass guitar", "saxophone", "banjo", "flute"]
PETS = [
    "a corgi puppy",
    "a rescue cat",
    "two guinea pigs",
    "a beagle",
    "a parrot",
    "a bunny",
    "a husky",
    "a tabby kitten",
]
CARS = [
    "Toyota Corolla",
    "Honda Civic",
    "Subaru Outback",
    "Mazda 3",
    "Tesla Model 3",
    "VW Golf",
    "Ford Focus",
    "Kia Niro",
    "Hyundai Ioniq",
    "Volvo XC40",
    "Skoda Octavia",
    "Nissan Leaf",
]
GIFTS = [
    "a pair of hiking boots",
    "a record player",
    "a cookbook",
    "a silk scarf",
    "noise-cancelling headphones",
    "a pottery class voucher",
    "a watch",
    "a fancy coffee grinder",
    "a framed photo",
    "concert tickets",
]
SPORTS = ["tennis", "five-a-side football", "badminton", "volleyball", "basketball", "squash", "table tennis"]
RELATIVES_F = ["sister", "mom", "aunt", "cousin", "grandma", "best friend", "roommate"]
RELATIVES_M = ["brother", "dad", "uncle", "cousin", "grandpa", "best friend", "roommate"]
COWORKER_ROLES = ["coworker", "neighbor", "old classmate", "teammate", "friend from the gym", "manager", "landlord"]
TITLE_ADJ = [
    "Silent",
    "Golden",
    "Broken",
    "Hidden",
    "Last",
    "Midnight",
    "Paper",
    "Crimson",
    "Quiet",
    "Wild",
    "Glass",
    "Northern",
]
TITLE_NOUN = [
    "Harbor",
    "Orchard",
    "Lantern",
    "Kingdom",
    "River",
    "Garden",
    "Signal",
    "Archive",
    "Mountain",
    "Tide",
    "Compass",
    "Fox",
]
BAND_WORDS = ["Velvet", "Echo", "Neon", "Paper", "Static", "Lunar", "Copper", "Honey", "Arctic", "Violet"]
BAND_NOUNS = ["Tigers", "Parade", "Lights", "Machines", "Ghosts", "Pilots", "Wolves", "Satellites"]
ACTIVITIES = [
    "hiking",
    "at the farmers market",
    "binge-watching something",
    "at my parents' place",
    "cleaning the flat",
    "at a friend's birthday",
    "trying a new brunch spot",
    "cycling by the river",
    "at the climbing gym",
    "catching up on sleep",
    "at a wedding",
    "doing a big grocery run",
    "painting the spare room",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
EMOJIS = ["😂", "😅", "🙌", "❤️", "😭", "👀", "🎉", "😊", "🤞", "🙃"]

# ---------------------------------------------------------------------------------------------
# Chit-chat between two friends (REALTALK-style): exchanges (opener, reply) and single turns
# ---------------------------------------------------------------------------------------------
FRIEND_EXCHANGES = [
    ("How was your weekend?", "Pretty chill, I was {activity} most of Saturday. You?"),
    ("Any plans for the long weekend?", "Thinking about a quick trip to {city}, nothing booked yet though"),
    (
        "Work has been nonstop this week, we have a big deadline on {weekday}.",
        "Ugh, that sounds exhausting. Hope you get a proper break after",
    ),
    ("I finally tried that {dish} recipe you sent me.", "And?? Was it as good as I promised?"),
    ("Did you end up watching {show}?", "Two episodes in, no spoilers please!"),
    ("It's been raining here all day, I haven't left the couch.", "Same honestly, perfect excuse for soup and a movie"),
    ("My neighbor {friend} invited me to a barbecue on {weekday}.", "Nice, free food is always a win"),
    ("How's the new apartment treating you?", "Slowly getting there, still living out of boxes half the time"),
    ("I've been trying to get back into {hobby}.", "Oh cool, how's it going so far?"),
    ("Do you want to grab coffee sometime next week?", "Yes! {weekday} afternoon works for me"),
    ("I slept like eleven hours last night.", "Wow, you clearly needed that"),
    (
        "My team is doing a potluck on {weekday}, I have no idea what to bring.",
        "Bring {dish}, it always disappears first",
    ),
    ("Have you been to {restaurant}?", "Not yet, is it any good?"),
    ("Just got back from the dentist, my face is still numb.", "Oh no, hope it wasn't anything serious"),
    ("I think I'm finally getting the hang of my new job.", "That's great! The first weeks are always the hardest"),
    ("What are you reading these days?", "Just started {book}, it's slow but I'm into it"),
    (
        "I need a new podcast for my commute, any ideas?",
        "Try anything about history, that's what keeps me awake on the train",
    ),
    ("We should plan a game night soon.", "Yes please, I'll bring snacks"),
    ("How's your mom doing?", "Much better, thanks for asking. She's back to her walks"),
    ("I signed up for a {hobby} workshop on a whim.", "Love that. Tell me how it goes"),
    ("The traffic on {street} this morning was unreal.", "It's been like that since they started the roadworks"),
    ("I can't believe it's already {month}.", "Right? This year is flying by"),
    ("Did you see the game last night?", "Only the second half, what a finish though"),
    ("I'm trying to cut down on coffee.", "Good luck with that, I'd last about a day"),
    ("My landlord finally fixed the heating.", "About time! It's been what, three weeks?"),
    ("We had a fire drill at work and it took forever.", "Classic. At least it got you out of a meeting"),
    ("I've been listening to {band} on repeat.", "Haven't heard of them, send me a song"),
    ("Thinking of redecorating my room this month.", "Go for plants, they make everything look better"),
    ("How did the interview go?", "I think it went well, they said they'd get back to me by {weekday}"),
    ("I went for a run this morning and it was freezing.", "Respect, I would have stayed in bed"),
    ("My phone screen cracked again.", "Noo, you need a better case"),
    ("Are you still doing that language course?", "Trying to, but I keep skipping the homework"),
    ("I made way too much {dish} last night.", "I'm available to help with leftovers"),
    ("There's a street food festival in {city} next month.", "Ooh, we should go together"),
    ("I finally cleaned out my closet.", "Feels so good, right? I need to do mine"),
    ("My sister keeps sending me baby photos of her dog.", "Honestly the best kind of texts"),
    ("What time do you usually get off work?", "Around six, unless my manager pulls me into something"),
    ("The new season of {show} comes out on {weekday}.", "Clearing my schedule already"),
    ("I had the weirdest dream last night.", "Tell me everything"),
    ("I'm so behind on emails.", "Same, I just mark them read and hope for the best"),
]
FRIEND_OPENERS = [
    "Hey! How's it going?",
    "Hiii, long time no talk",
    "Morning! How are you?",
    "Hey you, what's new?",
    "Guess who finally has a free evening",
    "Okay I have so much to tell you",
    "Hey, are you around?",
]
FRIEND_REACTIONS = [
    "Oh wow, that's huge!",
    "No way, really?",
    "Haha love that",
    "That's so exciting!",
    "Wait, seriously?",
    "Aw, that's awesome",
    "Good for you honestly",
    "Oh nice, I didn't know that",
    "Hmm, interesting",
    "That makes sense",
    "Omg yes",
    "Ha, of course",
    "Sounds about right",
    "Wow okay, big news",
    "I'm so happy to hear that",
    "Tell me more later!",
    "Ah, that's cool",
    "Haha nice one",
    "Oh that's a lot",
    "Yay!",
    "Wild",
    "Honestly respect",
    "I can totally see that",
]
FRIEND_BRIDGES_F = [
    "Oh yeah, I remember her! How's she doing?",
    "Wait, the one you told me about? What's she up to?",
    "Right, her! Any news?",
]
FRIEND_BRIDGES_M = [
    "Oh yeah, I remember him! How's he doing?",
    "Wait, the one you told me about? What's he up to?",
    "Right, him! Any news?",
]

# ---------------------------------------------------------------------------------------------
# User/assistant sessions (LongMemEval-style): exchanges (user request, assistant answer)
# ---------------------------------------------------------------------------------------------
ASSISTANT_EXCHANGES = [
    (
        "Can you suggest an easy weeknight dinner?",
        "Sure! A few quick options: {dish}, a sheet-pan roast with whatever vegetables you have, or a big salad with a fried egg on top. {dish_cap} is probably the fastest if you prep the ingredients first.",
    ),
    (
        "I'm planning a weekend in {city}. What should I pack?",
        "For a short trip, pack layers, comfortable walking shoes, a light rain jacket and a reusable water bottle. Check the forecast for {city} a day before you leave and keep one smart outfit in case you go out for dinner.",
    ),
    (
        "How do I get better at waking up early?",
        "Shift your alarm by 15 minutes every few days, get daylight soon after waking, keep your phone out of reach at night and try to go to bed at a consistent time, including on weekends.",
    ),
    (
        "Give me some ideas for a rainy Sunday.",
        "You could try a new recipe, start a puzzle, visit a museum, have a movie marathon, reorganize a shelf or call a friend you haven't talked to in a while.",
    ),
    (
        "What's a good beginner routine for {hobby}?",
        "Start with two short sessions a week, focus on fundamentals before anything fancy, and keep a small log of what you practiced. Many people also find a local group or class helps with motivation.",
    ),
    (
        "Can you help me write a short message to thank my colleague {friend}?",
        'Of course! Something like: "Hi {friend}, thanks so much for your help this week, I really appreciated it. Coffee is on me next time!" Feel free to adjust the tone.',
    ),
    (
        "How long should I steep green tea?",
        "Usually two to three minutes with water around 75-80°C. Hotter water or longer steeping tends to make it bitter.",
    ),
    (
        "What are some tips for a job interview at {company}?",
        "Research the company's recent projects, prepare two or three concrete stories about your past work, have questions ready for them and practice a short answer to 'tell me about yourself'.",
    ),
    (
        "Recommend a few books similar to {book}.",
        "If you enjoyed {book}, you might like character-driven novels with a slow-burn mystery. Look for recent literary thrillers or family sagas with multiple timelines.",
    ),
    (
        "How can I keep my houseplants alive while I travel?",
        "Water them deeply before you leave, group them together away from direct sun, and use self-watering spikes or a wick system for longer trips.",
    ),
    (
        "I need a packing checklist for a camping trip.",
        "Tent, sleeping bag, sleeping pad, headlamp, stove and fuel, water filter, first-aid kit, warm layers, rain gear, food, and a trash bag to pack everything out.",
    ),
    (
        "What's the best way to learn vocabulary in a new language?",
        "Spaced repetition works well: use flashcards daily, learn words in context through short sentences, and try to use new words in conversation as soon as possible.",
    ),
    (
        "Can you explain how compound interest works?",
        "Compound interest means you earn interest on your interest. Each period, the interest is added to the balance, so the next period's interest is calculated on a larger amount.",
    ),
    (
        "Any tips for running in cold weather?",
        "Dress in layers you can unzip, cover your ears and hands, warm up indoors for a few minutes and shorten your stride on icy patches.",
    ),
    (
        "How do I make my {dish} less bland?",
        "Salt in layers as you cook, add acidity at the end (a squeeze of lemon or a splash of vinegar), toast your spices and finish with fresh herbs.",
    ),
    (
        "What should I do on a layover in {city}?",
        "If you have more than five hours, take the train into the center, walk the old town and grab a local lunch. Otherwise stay near the airport and find a lounge or a quiet café.",
    ),
    (
        "Help me plan a budget for this month.",
        "List your fixed costs first (rent, bills, subscriptions), then set amounts for groceries and transport, put a fixed share into savings, and keep a small buffer for surprises.",
    ),
    (
        "What's a nice gift for someone who loves {hobby}?",
        "A good-quality starter tool, a class or workshop voucher, a book by a known practitioner, or a subscription box related to {hobby} are all thoughtful options.",
    ),
    (
        "How do I stop procrastinating on chores?",
        "Try the two-minute rule, pair chores with a podcast, set a timer for 15 minutes and stop when it rings, and keep a visible checklist.",
    ),
    (
        "Can you suggest stretches after a long day at the desk?",
        "Neck rolls, a doorway chest stretch, seated spinal twists, hip flexor lunges and wrist circles. Hold each for 20-30 seconds and breathe slowly.",
    ),
]
ASSISTANT_REACTIONS = [
    "That's great to hear! Let me know if you'd like help with anything related to that.",
    "Thanks for sharing that, I'll keep it in mind for future suggestions.",
    "Congratulations! That sounds like a big step.",
    "Got it. Is there anything specific you'd like me to help you plan around that?",
    "That sounds exciting! Happy to help if you need ideas.",
    "Noted! Would you like some tips related to that?",
    "Sounds like a lot is going on. How can I help today?",
]
USER_OPENERS = [
    "Hi! I have a few questions today.",
    "Hey, quick question.",
    "Hello again!",
    "Hi, can you help me with something?",
]
USER_FOLLOWUPS = [" Any tips?", " Can you help me plan around that?", " What do you think?", ""]

# ---------------------------------------------------------------------------------------------
# Session headers; ``{n}`` is the session number, the rest are date parts
# ---------------------------------------------------------------------------------------------
SESSION_HEADERS = [
    "[Session {n} — {d} {month} {y}]",
    "[Session {n} · {weekday}, {month} {d}, {y}]",
    "=== Chat on {y}-{mm}-{dd} ===",
    "--- {weekday} {d} {month} {y} ---",
    "[{dd}/{mm}/{y}] conversation {n}",
    "Session {n} ({month} {d}, {y})",
]
QUERY_DATES = ["{d} {month} {y}", "{month} {d}, {y}", "{y}-{mm}-{dd}", "{weekday}, {d} {month} {y}"]

# ---------------------------------------------------------------------------------------------
# Fact catalogs used by the templates. Query frames use {subj} ("Maya"/"I"), {poss} ("Maya's"/
# "my"), {does} ("does"/"do"), {is} ("is"/"am"); {v} is the answer value.
# ---------------------------------------------------------------------------------------------

# State updates: every frame and query shares the attribute's key word; the latest value wins.
STATE_ATTRIBUTES = [
    {
        "value": "city",
        "extra": {"rel": "relative"},
        "first": [
            "My {rel} lives in {v} these days",
            "My {rel} has been living in {v} for a while now",
            "Visiting my {rel} in {v} next month, she loves it there",
        ],
        "update": [
            "My {rel} just moved to {v}!",
            "Big news, my {rel} is relocating to {v}",
            "My {rel} packed everything up and moved to {v} last week",
            "So my {rel} lives in {v} now, the move finally happened",
        ],
        "query": ["Where does {poss} {rel} live now?", "Which city is {poss} {rel} living in at the moment?"],
    },
    {
        "value": "job",
        "first": [
            "My job as {av} keeps me busy",
            "I've had the same job as {av} for years",
            "Still at my job as {av}, nothing new",
        ],
        "update": [
            "I quit and started a new job as {av}!",
            "New job alert: I'm {av} now",
            "Starting Monday my job is officially {av}",
        ],
        "query": ["What is {poss} current job?", "What job {does} {subj} have now?"],
    },
    {
        "value": "car",
        "first": [
            "My car is a {v}, old but reliable",
            "Took my car, the {v}, in for a service",
            "Still driving my old car, a {v}",
        ],
        "update": [
            "Sold my old car and bought a {v}!",
            "My new car is a {v}, I love it",
            "Finally upgraded my car, it's a {v} now",
        ],
        "query": ["What car {does} {subj} drive now?", "What is {poss} current car?"],
    },
    {
        "value": "daypair",
        "first": ["I go to the gym on {v}", "My gym days are {v}, like clockwork"],
        "update": ["Switched my gym days to {v}", "I'm doing the gym on {v} now, fits better with work"],
        "query": ["Which days {does} {subj} go to the gym now?", "What are {poss} gym days currently?"],
    },
    {
        "value": "money",
        "first": ["My rent is {v} a month", "Paying {v} in rent, which is okay for the area"],
        "update": [
            "The landlord raised my rent to {v}",
            "New lease signed, rent is {v} now",
            "Ugh, rent went up again, it's {v} from next month",
        ],
        "query": ["How much is {poss} rent now?", "What {does} {subj} pay in rent at the moment?"],
    },
    {
        "value": "person",
        "first": ["My manager is {v}, pretty chill", "Had a one-on-one with my manager {v} today"],
        "update": ["Reorg at work, my new manager is {v}", "I report to a new manager now, {v}"],
        "query": ["Who is {poss} manager now?", "Who {is} {subj} reporting to as manager these days?"],
    },
    {
        "value": "book",
        "first": ["I'm reading {v} at the moment", "Been reading {v} before bed"],
        "update": ["Finished that one, now I'm reading {v}", "Started reading {v} last night, hooked already"],
        "query": ["What book {is} {subj} reading now?", "What {is} {subj} currently reading?"],
    },
    {
        "value": "racetime",
        "first": ["My 5k time is around {v}", "I usually run a 5k in about {v}"],
        "update": ["New 5k personal best: {v}!", "Ran a 5k in {v} this morning, fastest yet"],
        "query": ["What is {poss} latest 5k time?", "How fast {does} {subj} run a 5k now?"],
    },
    {
        "value": "minutes",
        "first": ["My commute is {v} each way", "The commute takes me {v}, not terrible"],
        "update": [
            "With the new bus route my commute is down to {v}",
            "Moved desks to the other office, my commute is {v} now",
        ],
        "query": ["How long is {poss} commute now?", "How long {does} {subj} spend on the commute these days?"],
    },
]

# Temporal order: a series of same-kind events; queries ask first / most recent / before X / after X.
TEMPORAL_SERIES = [
    {
        "value": "city",
        "noun": "city",
        "frames": [
            "Just got back from {v}, what a trip",
            "We spent a few days in {v}, the food was amazing",
            "Landed in {v} last night",
            "Weekend in {v} done, I'm exhausted",
            "Quick trip to {v} for work, back now",
        ],
        "first": "Which city did {subj} visit first?",
        "last": "Which city did {subj} visit most recently?",
        "before": "Which city did {subj} visit right before {x}?",
        "after": "Which city did {subj} visit right after {x}?",
    },
    {
        "value": "restaurant",
        "noun": "restaurant",
        "frames": [
            "Tried {v} for dinner tonight",
            "We ate at {v} yesterday, pretty good",
            "Had lunch at {v} with {friend}",
            "Finally went to {v}, the hype is real",
        ],
        "first": "Which restaurant did {subj} try first?",
        "last": "Which restaurant did {subj} eat at most recently?",
        "before": "Where did {subj} eat right before going to {x}?",
        "after": "Which restaurant did {subj} try right after {x}?",
    },
    {
        "value": "book",
        "noun": "book",
        "frames": [
            "Just finished {v}",
            "Finally done with {v}, what an ending",
            "Read {v} in one sitting",
            "Wrapped up {v} on the train",
        ],
        "first": "Which book did {subj} finish first?",
        "last": "Which book did {subj} finish most recently?",
        "before": "Which book did {subj} finish right before {x}?",
        "after": "Which book did {subj} finish right after {x}?",
    },
    {
        "value": "band",
        "noun": "band",
        "frames": [
            "Saw {v} live last night!",
            "The {v} concert was incredible",
            "Went to see {v} with {friend}",
            "{v} played a surprise gig downtown and I was there",
        ],
        "first": "Which band did {subj} see live first?",
        "last": "Which band did {subj} see live most recently?",
        "before": "Which band did {subj} see right before {x}?",
        "after": "Which band did {subj} see right after {x}?",
    },
    {
        "value": "hobby",
        "noun": "class",
        "frames": [
            "Tried a {v} class today",
            "Did my first {v} session this week",
            "Went to a {v} workshop with {friend}",
        ],
        "first": "Which class did {subj} try first?",
        "last": "Which class did {subj} try most recently?",
        "before": "Which class did {subj} try right before {x}?",
        "after": "Which class did {subj} try right after {x}?",
    },
]

# Coreference: a person is introduced by name, later the fact is stated with a pronoun only.
COREF_INTROS = [
    "Remember my {role} {name}?",
    "Had lunch with {name}, my {role}, today",
    "My {role} {name} stopped by earlier",
    "Ran into {name} at the store, my {role} from way back",
]
COREF_FACTS = [
    {
        "value": "city",
        "frames": ["{Pron}'s moving to {v} next month, can you believe it", "{Pron} is relocating to {v} for good"],
        "distractor": "{Other}'s moving to {v} too, everyone is leaving",
        "query": "Where is {name} moving?",
    },
    {
        "value": "job",
        "frames": ["{Pron} just got a job as {av}", "{Pron} finally landed a position as {av}"],
        "distractor": "{Other} just got a job as {av}",
        "query": "What new job did {name} get?",
    },
    {
        "value": "person",
        "frames": ["{Pron} got engaged to {v} over the weekend!", "{Pron} is marrying {v} next summer"],
        "distractor": "{Other} got engaged to {v} recently",
        "query": "Who is {name} engaged to?",
    },
    {
        "value": "pet",
        "frames": ["{Pron} adopted {v} and sends me photos every day", "{Pron} just brought home {v}"],
        "distractor": "{Other} adopted {v} last year",
        "query": "What pet did {name} adopt?",
    },
    {
        "value": "hobby",
        "frames": ["{Pron}'s gotten really into {v} lately", "{Pron} spends every weekend on {v} now"],
        "distractor": "{Other} is really into {v} these days",
        "query": "What hobby has {name} taken up?",
    },
    {
        "value": "city",
        "frames": ["{Pron}'s running the {v} marathon in {month}", "{Pron} signed up for the {v} marathon"],
        "distractor": "{Other} is running the {v} marathon this year",
        "query": "Which city's marathon is {name} running?",
    },
]
PLACE_INTROS = [
    "We finally tried {place} on {street}",
    "Went to {place} near {street} last night",
    "Got dinner at {place} with {friend}",
]
PLACE_FACTS = [
    "Honestly that place does the best {v} in town",
    "That place's {v} is unreal, going back for sure",
    "Still thinking about the {v} at that place",
    "Their {v} was so good I ordered seconds",
]
PLACE_DISTRACTOR = "{other_place} has decent {v} too, but nothing special"
PLACE_QUERY = ["What dish did {subj} love at {place}?", "What food was great at {place}?"]

# Speaker attribution: both speakers say the same kind of thing; the query asks what one of them said.
ATTRIBUTION_TOPICS = [
    {
        "value": "pet",
        "frames": ["I really want to get {v} this year", "I keep looking at adoption sites, I want {v} so badly"],
        "query": "What pet does {name} want to get?",
    },
    {
        "value": "country",
        "frames": ["I want to travel to {v} next summer", "Travelling to {v} is at the top of my list"],
        "query": "Where does {name} want to travel?",
    },
    {
        "value": "instrument",
        "frames": ["I want to learn the {v}", "Thinking of taking {v} lessons, I want to learn properly"],
        "query": "Which instrument does {name} want to learn?",
    },
    {
        "value": "dish",
        "frames": ["I'm craving {v} tonight", "Honestly I could eat {v} every day, craving it now"],
        "query": "What food is {name} craving?",
    },
    {
        "value": "sport",
        "frames": ["I started playing {v} on weekends", "Joined a {v} league after work, started playing last week"],
        "query": "What sport did {name} start playing?",
    },
    {
        "value": "show",
        "frames": ["I'm hooked on {v} right now", "Just started watching {v}, totally hooked"],
        "query": "Which show is {name} hooked on?",
    },
    {
        "value": "gift",
        "frames": ["I'm getting my dad {v} for his birthday", "For my dad's birthday I'm getting him {v}"],
        "query": "What is {name} getting their dad for his birthday?",
    },
]
ATTRIBUTION_ECHOES = ["{name}, same! {text}", "Haha {name}, {text_lc}", "{text} too, {name}", "Oh {name}, {text_lc}"]

# Paraphrased facts: the evidence avoids the query's words; traps reuse them without the answer.
PARAPHRASE_FACTS = [
    {
        "value": "instrument",
        "query": "What musical instrument {is} {subj} learning?",
        "evidence": [
            "Finally signed up for {v} lessons, my fingers hurt lol",
            "My {v} teacher says I'm improving, slowly",
        ],
        "traps": [
            "I've always wanted to learn a musical instrument",
            "Learning an instrument as an adult is so hard",
            "Which musical instrument would be easiest to start learning?",
        ],
    },
    {
        "value": "gift",
        "query": "What did {subj} get {poss} mother for her birthday?",
        "evidence": [
            "Ended up buying Mom {v}, she turned sixty on Sunday",
            "Mom loved {v}, best present I've picked in years",
        ],
        "traps": [
            "I still have no idea what to get my mother for her birthday",
            "My mother's birthday is coming up and I need to get her something",
            "What did you get your mother for her birthday last year?",
        ],
    },
    {
        "value": "commute",
        "query": "How {does} {subj} get to work these days?",
        "evidence": [
            "Lately I {v} to the office, takes about twenty minutes",
            "Decided to {v} to the office every morning now",
        ],
        "traps": [
            "Getting to work these days is such a pain",
            "How do you get to work these days? Still driving?",
            "Work these days starts so early",
        ],
    },
    {
        "value": "allergen",
        "query": "What food {is} {subj} allergic to?",
        "evidence": [
            "Turns out I can't eat {v}, my throat swelled up last time",
            "Doctor confirmed it, {v} are off the menu for me forever",
        ],
        "traps": [
            "Do you know anyone who is allergic to food?",
            "Being allergic to a food must be so annoying at restaurants",
            "Is anyone allergic to any food? Asking for the party",
        ],
    },
    {
        "value": "city",
        "query": "Where {is} {subj} getting married?",
        "evidence": [
            "We booked the ceremony at a vineyard near {v}!",
            "The venue is a little chapel in {v}, so pretty",
        ],
        "traps": [
            "Getting married is so much planning",
            "So many people are getting married this year",
            "Where are you getting married, have you decided?",
        ],
    },
    {
        "value": "field",
        "query": "What {is} {subj} studying at university?",
        "evidence": ["My {v} lectures start next week", "Spent all night on a {v} assignment, send help"],
        "traps": [
            "Studying at university is so different from school",
            "What are you studying at university these days?",
            "University studying is exhausting",
        ],
    },
    {
        "value": "city",
        "query": "Where did {subj} grow up?",
        "evidence": ["I spent my whole childhood in {v}", "As a kid in {v} I used to bike everywhere"],
        "traps": [
            "Where did you grow up again?",
            "I grew up thinking everyone had a garden",
            "Did you grow up in a big family?",
        ],
    },
    {
        "value": "country",
        "query": "Where {is} {subj} going on vacation?",
        "evidence": ["Flights to {v} are booked for {month}!", "Two weeks in {v} in {month}, finally"],
        "traps": [
            "I really need to go on a vacation",
            "Going on vacation anywhere soon?",
            "Vacation planning is stressing me out",
        ],
    },
    {
        "value": "language",
        "query": "Which language {is} {subj} learning?",
        "evidence": ["My {v} tutor is so strict haha", "Practiced my {v} with a waiter today and he understood me"],
        "traps": [
            "Learning a language takes forever",
            "Which language would be the most useful to learn?",
            "I keep learning and forgetting language stuff",
        ],
    },
    {
        "value": "injury",
        "query": "Why did {subj} go to the hospital?",
        "evidence": ["Spent the night in the ER with a {v}, I'm okay now", "Doctors patched up my {v}, home now"],
        "traps": [
            "I hate going to the hospital",
            "My aunt works at the hospital",
            "Did you go to the hospital for that?",
        ],
    },
    {
        "value": "dish",
        "query": "What is {poss} favorite dish to cook?",
        "evidence": ["Nothing beats making {v} on a Sunday night", "Made {v} again, it's my signature at this point"],
        "traps": [
            "I'm trying to cook more often",
            "What is your favorite dish to cook?",
            "Cooking my favorite dish always takes too long",
        ],
    },
]
COMMUTES = ["cycle", "take the tram", "carpool with a neighbor", "walk", "ride my scooter", "take the ferry"]
ALLERGENS = ["peanuts", "shellfish", "sesame seeds", "kiwis", "cashews", "strawberries"]
FIELDS = ["nursing", "data science", "architecture", "law", "marine biology", "economics", "graphic design"]
LANGUAGES = ["Spanish", "Japanese", "Portuguese", "Korean", "Italian", "Arabic", "Turkish", "Dutch"]
INJURIES = ["broken wrist", "sprained ankle", "dislocated shoulder", "cracked rib", "deep cut on my hand"]

# Long documents: sections about parallel entities; only a section's first sentence names it.
DOCUMENT_KINDS = [
    {
        "title": ["Staff profiles from the {company} newsletter", "Meet the team: {company}", "Who's who at {company}"],
        "entity": "person",
        "intro": ["{name} is {av} based in {city}.", "{name} works as {av} and lives in {city}."],
        "facts": [
            {"value": "city", "frame": "{Pron} studied at the University of {v}.", "query": "Where did {name} study?"},
            {
                "value": "company",
                "frame": "Before this role, {pron} worked at {v} for several years.",
                "query": "Where did {name} work before this role?",
            },
            {
                "value": "award",
                "frame": "In {year}, {pron} received the {v}.",
                "query": "Which award did {name} receive?",
            },
            {
                "value": "book",
                "frame": "{Pron} is the author of a short book called {v}.",
                "query": "What book did {name} write?",
            },
            {"value": "city", "frame": "{Pron} was born in {v}.", "query": "Where was {name} born?"},
            {
                "value": "hobby",
                "frame": "Outside work, {pron} spends weekends on {v}.",
                "query": "What does {name} do on weekends?",
            },
        ],
        "generic": [
            "Colleagues describe {pron_obj} as patient and curious.",
            "{Pron} mentors new hires every spring.",
            "{Pron} prefers early meetings and long walks at lunch.",
            "{Pron} has led several internal projects.",
            "Most days {pron} cycles to the office.",
            "{Pron} is known for detailed, friendly code reviews.",
            "{Pron} joined the current team after a reorganisation.",
            "{Pron} keeps a plant on every desk {pron} sits at.",
        ],
    },
    {
        "title": ["Regional company profiles", "Annual review: firms to watch", "Directory of {city} employers"],
        "entity": "company",
        "intro": ["{name} is a company headquartered in {city}.", "{name} is a mid-sized business based in {city}."],
        "facts": [
            {"value": "year", "frame": "It was founded in {v}.", "query": "In which year was {name} founded?"},
            {
                "value": "person",
                "frame": "The firm's chief executive is {v}.",
                "query": "Who is the chief executive of {name}?",
            },
            {
                "value": "count",
                "frame": "The company employs roughly {v} people.",
                "query": "How many people does {name} employ?",
            },
            {
                "value": "city",
                "frame": "In {year}, the firm moved its main office to {v}.",
                "query": "Where did {name} move its main office?",
            },
            {"value": "product", "frame": "It is best known for {v}.", "query": "What is {name} best known for?"},
        ],
        "generic": [
            "The firm has offices in several countries.",
            "It publishes an annual sustainability report.",
            "Revenue grew steadily over the last decade.",
            "The company runs a small graduate programme.",
            "Its staff turnover is below the industry average.",
            "The business expanded into online sales recently.",
            "The firm sponsors a local youth football club.",
            "It has weathered two economic downturns.",
        ],
    },
]
DOCUMENT_OPENINGS = [
    "This document collects short profiles.",
    "The following sections were compiled from public sources.",
    "Each section summarises one entry.",
]

# Session dates: one activity per session; the query names the date, the evidence only says "today".
SESSION_ACTIVITIES = [
    {
        "value": "dish",
        "frames": [
            "Made {v} for dinner tonight",
            "Cooked {v} today, turned out great",
            "Tried making {v} this evening",
        ],
        "query": "What did {subj} cook on {date}?",
    },
    {
        "value": "city",
        "frames": ["Went hiking near {v} today, my legs are dead", "Did a long hike outside {v} this morning"],
        "query": "Where did {subj} go hiking on {date}?",
    },
    {
        "value": "show",
        "frames": ["Watched the first episode of {v} tonight", "Finally started {v} this evening"],
        "query": "Which show did {subj} start watching on {date}?",
    },
    {
        "value": "gift",
        "frames": ["Bought {v} today, treating myself", "Picked up {v} at the mall this afternoon"],
        "query": "What did {subj} buy on {date}?",
    },
    {
        "value": "hobby",
        "frames": ["Had my first {v} class today", "Went to a {v} meetup this afternoon"],
        "query": "Which activity did {subj} try on {date}?",
    },
    {
        "value": "person",
        "frames": ["Had coffee with {v} today, we talked for hours", "Bumped into {v} at the station this morning"],
        "query": "Who did {subj} meet on {date}?",
    },
]
USER_REPLIES = [
    "Thanks, that's really helpful!",
    "Perfect, thank you.",
    "Great, I'll try that.",
    "Good to know, thanks.",
    "Makes sense, appreciate it.",
    "Oh nice, I hadn't thought of that.",
]
