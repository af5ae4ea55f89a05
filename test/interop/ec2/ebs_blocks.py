"""Helpers for the EBS direct API tests: write and read snapshots block by block
with boto3's ebs client, checksums both ways, as coldsnap does."""
import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor

BLOCK = 512 * 1024


def b64sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def blocks_of(image):
    """The non-zero 512 KiB blocks of a bytes image: {index: data}."""
    zero = bytes(BLOCK)
    out = {}
    for i in range(0, len(image), BLOCK):
        b = image[i : i + BLOCK].ljust(BLOCK, b"\0")
        if b != zero:
            out[i // BLOCK] = b
    return out


def put_blocks(ebs, snapshot_id, blocks, threads=8):
    def put(item):
        i, data = item
        r = ebs.put_snapshot_block(
            SnapshotId=snapshot_id, BlockIndex=i, BlockData=data, DataLength=BLOCK, Checksum=b64sha(data), ChecksumAlgorithm="SHA256"
        )
        assert r["Checksum"] == b64sha(data) and r["ChecksumAlgorithm"] == "SHA256"

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, sorted(blocks.items())))


def linear(blocks):
    h = hashlib.sha256()
    for i in sorted(blocks):
        h.update(hashlib.sha256(blocks[i]).digest())
    return base64.b64encode(h.digest()).decode()


def write_snapshot(ebs, blocks, size_gib=1, threads=8, **start):
    snap = ebs.start_snapshot(VolumeSize=size_gib, Timeout=60, **start)
    assert snap["Status"] == "pending" and snap["BlockSize"] == BLOCK
    sid = snap["SnapshotId"]
    put_blocks(ebs, sid, blocks, threads)
    done = ebs.complete_snapshot(
        SnapshotId=sid, ChangedBlocksCount=len(blocks), Checksum=linear(blocks), ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR"
    )
    assert done["Status"] == "completed"
    return sid


def list_blocks(ebs, snapshot_id, **kw):
    """Every block of a snapshot, page by page (NextToken; botocore has no paginator for ebs): {index: token}."""
    out = {}
    token = None
    while True:
        page = ebs.list_snapshot_blocks(SnapshotId=snapshot_id, **kw, **({"NextToken": token} if token else {}))
        for b in page["Blocks"]:
            out[b["BlockIndex"]] = b["BlockToken"]
        token = page.get("NextToken")
        if not token:
            return out


def read_snapshot(ebs, snapshot_id, threads=8):
    """{index: data} of every block, each checked against the checksum the service sent."""
    tokens = list_blocks(ebs, snapshot_id)

    def get(item):
        i, token = item
        r = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=i, BlockToken=token)
        data = r["BlockData"].read()
        assert r["DataLength"] == BLOCK and len(data) == BLOCK
        assert r["ChecksumAlgorithm"] == "SHA256" and r["Checksum"] == b64sha(data)
        return i, data

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(get, sorted(tokens.items())))
