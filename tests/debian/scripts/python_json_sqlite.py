"""json and an in-memory sqlite3 database: modules of libpython3.11-stdlib, not of python3-minimal."""

import json
import sqlite3

doc = json.loads('{"name": "bookworm", "version": 12, "tags": ["stable", null, true], "pi": 3.25}')
print("json", json.dumps(doc, sort_keys=True), json.dumps({"nested": [doc["tags"], {}]}, indent=1))

db = sqlite3.connect(":memory:")
db.execute("create table pkg (name text primary key, size integer)")
db.executemany("insert into pkg values (?, ?)", [("bash", 7000), ("coreutils", 18000), ("tar", 3000)])
print("sqlite", db.execute("select count(*), sum(size), max(name) from pkg").fetchone())
print("sqlite", db.execute("select name from pkg where size > ? order by size desc", (5000,)).fetchall())
