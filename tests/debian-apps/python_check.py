"""Python's standard library on Kiln: json, sqlite3 (a file in the root file system, written and
read back), threading, hashlib (OpenSSL). Prints one JSON line the test compares."""
import hashlib
import json
import sqlite3
import threading

db = sqlite3.connect("/tmp/check.db")
db.execute("create table t (k integer primary key, v text)")
db.executemany("insert into t (v) values (?)", [(f"row {i}",) for i in range(1000)])
db.commit()
count = db.execute("select count(*) from t").fetchone()[0]
db.close()

total = []
lock = threading.Lock()
def work(n):
    s = sum(range(n))
    with lock:
        total.append(s)
threads = [threading.Thread(target=work, args=(100000 * (i + 1),)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()

print(json.dumps({"rows": count, "threads": len(total), "sum": sum(total),
                  "sha": hashlib.sha256(b"kiln").hexdigest()[:16]}))
