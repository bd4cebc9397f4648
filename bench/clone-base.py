"""Clone a stopped Chroma base directory under new ids (the 4x compactor bench's extra sealed segments).

usage: python3 bench/clone-base.py SRC_DB DEST_DB PART

Every vector id `IMAGE#xxxxxxxx-0000-4000-...` becomes `IMAGE#xxxxxxxx-000{PART}-4000-...` in the SQLite metadata
segment, the write-ahead log and the HNSW id map (index_metadata.pickle); the vectors, documents and the HNSW graph
are the source's. Building a 70,000-vector part with Chroma's add takes 4-30 min on the shared 2-core machine; a
clone takes seconds and holds a genuine Chroma directory (it opens, counts and queries like the source).
Standard library only.
"""
import glob
import os
import pickle
import shutil
import sqlite3
import sys

src, dest, part = sys.argv[1], sys.argv[2], int(sys.argv[3])
old, new = "-0000-4000-", f"-{part:04d}-4000-"
if os.path.exists(dest):
    shutil.rmtree(dest)
shutil.copytree(src, dest)

db = sqlite3.connect(os.path.join(dest, "chroma.sqlite3"))
with db:
    db.execute("UPDATE embeddings SET embedding_id = replace(embedding_id, ?, ?)", (old, new))
    db.execute("UPDATE embeddings_queue SET id = replace(id, ?, ?)", (old, new))
    db.execute(
        "UPDATE embedding_metadata SET string_value = replace(string_value, ?, ?) WHERE key = 'image_id'",
        (old, new),
    )
db.close()

for path in glob.glob(os.path.join(dest, "*", "index_metadata.pickle")):
    with open(path, "rb") as f:
        meta = pickle.load(f)
    rename = lambda i: i.replace(old, new, 1)
    meta["id_to_label"] = {rename(k): v for k, v in meta["id_to_label"].items()}
    meta["label_to_id"] = {k: rename(v) for k, v in meta["label_to_id"].items()}
    meta["id_to_seq_id"] = {rename(k): v for k, v in meta["id_to_seq_id"].items()}
    with open(path, "wb") as f:
        pickle.dump(meta, f, protocol=3)
