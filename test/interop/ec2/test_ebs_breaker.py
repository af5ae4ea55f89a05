"""Adversarial tests of the EBS direct APIs (issue 28), as a hostile client
meets them: a body the signature does not cover, a PutSnapshotBlock racing
CompleteSnapshot, an all-zero block, and a damaged block in the store. Each
test names the rule it guards; run by test/interop/ebs-breaker.test.ts."""
import base64
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.exceptions
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from conftest import ENDPOINT
from ebs_blocks import BLOCK, b64sha, linear, put_blocks


def signed(method, path, body, headers, sign_payload, only=None):
    """A request signed by botocore's SigV4 for service `ebs`: its body signed or
    UNSIGNED-PAYLOAD (as botocore sends PutSnapshotBlock over https), and, when
    `only` is given, with only those headers in SignedHeaders."""

    class Auth(SigV4Auth):
        def _should_sha256_sign_payload(self, request):
            return sign_payload

        def headers_to_sign(self, request):
            h = super().headers_to_sign(request)
            if only is not None:
                for k in list(h.keys()):
                    if k.lower() not in only:
                        del h[k]
            return h

    r = AWSRequest(method=method, url=ENDPOINT + path, data=body, headers=headers)
    r.context["payload_signing_enabled"] = sign_payload  # botocore then sends x-amz-content-sha256: UNSIGNED-PAYLOAD
    Auth(boto3.Session().get_credentials(), "ebs", os.environ["AWS_DEFAULT_REGION"]).add_auth(r)
    p = r.prepare()
    return dict(p.headers)


def send(method, path, body, headers):
    return requests.request(method, ENDPOINT + path, data=body, headers=headers, timeout=60)


def test_start_snapshot_body_is_covered_by_the_signature(ebs):
    # botocore's model gives only PutSnapshotBlock the unsigned body (authtype v4-unsigned-body). A StartSnapshot whose
    # body is UNSIGNED-PAYLOAD leaves Encrypted, KmsKeyArn and ParentSnapshotId to whoever is on the path: the signature
    # must cover it, so a request whose body was replaced after signing is refused.
    asked = json.dumps({"VolumeSize": 1, "Encrypted": True}).encode()
    headers = signed("POST", "/snapshots", asked, {"Content-Type": "application/json"}, sign_payload=False)
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    swapped = json.dumps({"VolumeSize": 7}).encode()
    r = send("POST", "/snapshots", swapped, headers)
    made = r.json().get("SnapshotId") if r.status_code == 201 else None
    assert r.status_code in (400, 403) and made is None, (
        f"an unsigned StartSnapshot body, replaced after signing, was taken: {r.status_code} {r.text} (snapshot {made})"
    )


def test_put_snapshot_block_unsigned_payload_needs_a_signed_checksum(ebs):
    # With UNSIGNED-PAYLOAD the x-amz-Checksum header is what protects the block (docs/ebs-direct-apis.md: "which is
    # signed"). A request that leaves it out of SignedHeaders lets anyone on the path swap the body and the checksum.
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    good, evil = os.urandom(BLOCK), b"E" * BLOCK
    headers = signed(
        "PUT",
        f"/snapshots/{sid}/blocks/0",
        good,
        {"x-amz-Data-Length": str(BLOCK), "x-amz-Checksum": b64sha(good), "x-amz-Checksum-Algorithm": "SHA256"},
        sign_payload=False,
        only={"host", "x-amz-date", "x-amz-content-sha256"},
    )
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert "x-amz-checksum" not in headers["Authorization"].lower().split("signedheaders=")[1].split(",")[0]
    r = send("PUT", f"/snapshots/{sid}/blocks/0", evil, {**headers, "x-amz-Checksum": b64sha(evil)})
    assert r.status_code in (400, 403), f"a block whose checksum header is not signed was stored from a swapped body: {r.status_code} {r.text}"
    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0)
    assert ebs.list_snapshot_blocks(SnapshotId=sid).get("Blocks", []) == []


def test_a_put_in_flight_never_lands_in_a_completed_snapshot(ebs, kms):
    # CompleteSnapshot checks ChangedBlocksCount (and the LINEAR aggregate) against the blocks written, then the
    # snapshot is completed: immutable. A PutSnapshotBlock of an encrypted snapshot checks `pending` before it awaits
    # the KMS and XTS, and stores after, so a put in flight during CompleteSnapshot lands in the completed snapshot.
    key = kms.create_key()["KeyMetadata"]["Arn"]
    data = os.urandom(BLOCK)
    violations = []
    for _ in range(20):
        sid = ebs.start_snapshot(VolumeSize=1, Encrypted=True, KmsKeyArn=key)["SnapshotId"]
        ok = [0]
        lock = threading.Lock()

        def put(i, sid=sid, ok=ok, lock=lock):
            try:
                ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=i, BlockData=data, DataLength=BLOCK, Checksum=b64sha(data), ChecksumAlgorithm="SHA256")
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "ValidationException", e.response
                return
            with lock:
                ok[0] += 1

        claimed = None
        with ThreadPoolExecutor(8) as pool:
            puts = [pool.submit(put, i) for i in range(64)]
            # Complete with the count of puts answered so far, until it is taken (or every put is done).
            while claimed is None and not all(f.done() for f in puts):
                with lock:
                    n = ok[0]
                try:
                    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=n)
                    claimed = n
                except botocore.exceptions.ClientError as e:
                    assert e.response["Error"]["Code"] == "ValidationException", e.response
            for f in puts:
                f.result()
        if claimed is None:
            continue
        held = len(ebs.list_snapshot_blocks(SnapshotId=sid).get("Blocks", []))
        if held != claimed:
            violations.append((sid, claimed, held))
    assert not violations, f"completed snapshots changed after CompleteSnapshot (id, ChangedBlocksCount, blocks held): {violations}"


def test_an_all_zero_block_put_counts_as_written(ebs):
    # A client counts the blocks it wrote (ChangedBlocksCount: "The number of blocks that were written to the
    # snapshot") and aggregates their checksums. An all-zero block is answered 201 but not counted (stored as a hole;
    # in an encrypted snapshot too, whose zero sectors are stored as zeros), so the honest count is refused.
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    blocks = {0: bytes(BLOCK), 1: os.urandom(BLOCK)}
    for i, d in blocks.items():
        ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=i, BlockData=d, DataLength=BLOCK, Checksum=b64sha(d), ChecksumAlgorithm="SHA256")
    try:
        ebs.complete_snapshot(
            SnapshotId=sid, ChangedBlocksCount=2, Checksum=linear(blocks), ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR"
        )
    except botocore.exceptions.ClientError as e:
        raise AssertionError(f"the count and aggregate of the blocks written were refused: {e.response['Error']['Message']}") from e


def test_a_damaged_stored_block_is_not_served_as_good(ebs):
    # A block's file is named by its SHA-256 (content addressed), and GetSnapshotBlock answers an x-amz-Checksum so
    # the reader can check the data. Computing that checksum over whatever the file now holds launders damage: the
    # reader gets changed bytes with a checksum that matches them. The store must check a block against its name.
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    data = os.urandom(BLOCK)
    ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=3, BlockData=data, DataLength=BLOCK, Checksum=b64sha(data), ChecksumAlgorithm="SHA256")
    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=1)
    token = ebs.list_snapshot_blocks(SnapshotId=sid)["Blocks"][0]["BlockToken"]
    h = hashlib.sha256(data).hexdigest()
    assert base64.b64decode(token).hex() == h
    with open(os.path.join(os.environ["KMSVOL_HOME"], "blocks", h[:2], h), "r+b") as f:  # bit rot in the store
        f.seek(1000)
        f.write(bytes([data[1000] ^ 0x40]))
    try:
        r = ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=3, BlockToken=token)
    except botocore.exceptions.ClientError:
        return  # refused: good
    got = r["BlockData"].read()
    if got != data and r["Checksum"] == b64sha(got):
        raise AssertionError("a damaged block was served with a checksum computed over the damage")


def test_the_write_operations_take_only_snapshots_started_by_start_snapshot(ebs, ec2, kms):
    # PutSnapshotBlock and CompleteSnapshot check only that a snapshot is `pending`. An EC2 CopySnapshot (or
    # CreateSnapshot) is pending while it is being made: CompleteSnapshot then marks it completed half-made (no head, no
    # blocks yet), and DescribeSnapshots shows it completed while the copy still runs.
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    blocks = {i: os.urandom(BLOCK) for i in range(0, 2048, 16)}
    put_blocks(ebs, sid, blocks)
    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(blocks))
    key = kms.create_key()["KeyMetadata"]["Arn"]
    copy = ec2.copy_snapshot(SourceSnapshotId=sid, SourceRegion=os.environ["AWS_DEFAULT_REGION"], Encrypted=True, KmsKeyId=key)["SnapshotId"]
    assert ec2.describe_snapshots(SnapshotIds=[copy])["Snapshots"][0]["State"] == "pending"
    try:
        ebs.complete_snapshot(SnapshotId=copy, ChangedBlocksCount=0)
        taken = True
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationException", e.response
        taken = False
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[copy], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert not taken, f"CompleteSnapshot completed {copy}, an EC2 CopySnapshot still being made"


def test_encryption_by_default_refuses_an_unencrypted_parent(ebs, ec2):
    # AWS ("Encryption outcomes for EBS direct APIs"): with EBS encryption by default enabled "you can't create
    # unencrypted snapshots", and StartSnapshot with an unencrypted parent fails with ValidationException whatever
    # Encrypted and KmsKeyArn say. Here the child takes the parent's (absent) encryption: an unencrypted snapshot.
    parent = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    ebs.complete_snapshot(SnapshotId=parent, ChangedBlocksCount=0)
    ec2.enable_ebs_encryption_by_default()
    try:
        try:
            child = ebs.start_snapshot(VolumeSize=1, ParentSnapshotId=parent)
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "ValidationException", e.response
            return
        made = ec2.describe_snapshots(SnapshotIds=[child["SnapshotId"]])["Snapshots"][0]
        raise AssertionError(f"StartSnapshot made {made['SnapshotId']} (Encrypted {made['Encrypted']}) of an unencrypted parent under encryption by default")
    finally:
        ec2.disable_ebs_encryption_by_default()


def test_a_user_with_no_identity_policy_cannot_read_snapshots_through_ebs(ebs):
    # IAM: "By default, IAM users and roles don't have any permissions" (src/kms/identity.ts says so too); the EBS
    # direct APIs are authorized by ebs:* actions (ebs:ListSnapshotBlocks, ebs:GetSnapshotBlock, ...). Here a user made
    # with CreateUser and nothing else reads an unencrypted snapshot block by block, and writes new snapshots.
    iam = boto3.client("iam", endpoint_url=ENDPOINT)
    name = "nopolicy" + os.urandom(4).hex()
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == []
    session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=os.environ["AWS_DEFAULT_REGION"])
    nobody = session.client("ebs", endpoint_url=ENDPOINT)
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    secret = os.urandom(BLOCK)
    ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=0, BlockData=secret, DataLength=BLOCK, Checksum=b64sha(secret), ChecksumAlgorithm="SHA256")
    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=1)
    got = None
    try:
        token = nobody.list_snapshot_blocks(SnapshotId=sid)["Blocks"][0]["BlockToken"]
        got = nobody.get_snapshot_block(SnapshotId=sid, BlockIndex=0, BlockToken=token)["BlockData"].read()
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
    if got == secret:
        raise AssertionError(f"{name}, with no identity policy, read block 0 of {sid} through the EBS direct APIs")
