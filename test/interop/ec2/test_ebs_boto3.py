"""The EBS direct APIs through boto3's ebs client, as a backup tool uses them:
snapshots written and read block by block with checksums both ways, errors
with the model's Reasons, KMS authorization of every block, block maps that
share blocks, and EC2 volumes made from API-written snapshots."""
import os
import subprocess
import tempfile
import time

import botocore.exceptions
import pytest
from conftest import mount, unmount
from ebs_blocks import BLOCK, b64sha, blocks_of, list_blocks, read_snapshot, write_snapshot

FAST = {"Delay": 1, "MaxAttempts": 120}
MIB = 1024 * 1024


def block_files():
    root = os.path.join(os.environ["KMSVOL_HOME"], "blocks")
    return sum(len(files) for _, _, files in os.walk(root))


def reasons(ebs, shape):
    return ebs.meta.service_model.shape_for(shape).enum


@pytest.mark.parametrize("encrypted", [False, True])
def test_round_trip_with_checksums_both_ways(ebs, ec2, kms, cleanup, encrypted):
    start = {}
    if encrypted:
        start = {"Encrypted": True, "KmsKeyArn": kms.create_key()["KeyMetadata"]["Arn"]}
    image = os.urandom(int(os.environ.get("EBS_TEST_MIB", "64")) * MIB)
    blocks = blocks_of(image)
    t0 = time.monotonic()
    sid = write_snapshot(ebs, blocks, **start)
    t1 = time.monotonic()
    cleanup["snapshots"].append(sid)
    assert sorted(list_blocks(ebs, sid, MaxResults=100)) == sorted(blocks)
    got = read_snapshot(ebs, sid)
    t2 = time.monotonic()
    assert got == blocks
    mib = len(image) / MIB
    print(f"\nEBS_THROUGHPUT encrypted={encrypted} MiB={mib:.0f} put={mib / (t1 - t0):.1f}MiB/s get={mib / (t2 - t1):.1f}MiB/s")
    desc = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
    assert desc["State"] == "completed" and desc["Encrypted"] is encrypted and desc["VolumeSize"] == 1
    if encrypted:
        assert desc["KmsKeyId"] == start["KmsKeyArn"]
        # The stored blocks are ciphertext: no block file holds the plaintext.
        root = os.path.join(os.environ["KMSVOL_HOME"], "blocks")
        for d, _, files in os.walk(root):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    assert fh.read(64) != image[:64]


def test_a_corrupted_checksum_is_refused_and_the_block_is_not_stored(ebs, cleanup):
    sid = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    cleanup["snapshots"].append(sid)
    good = os.urandom(BLOCK)
    ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=0, BlockData=good, DataLength=BLOCK, Checksum=b64sha(good), ChecksumAlgorithm="SHA256")
    before = block_files()
    bad = bytearray(os.urandom(BLOCK))
    checksum = b64sha(bytes(bad))
    bad[100] ^= 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ebs.put_snapshot_block(SnapshotId=sid, BlockIndex=1, BlockData=bytes(bad), DataLength=BLOCK, Checksum=checksum, ChecksumAlgorithm="SHA256")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["Reason"] in reasons(ebs, "ValidationExceptionReason")
    assert block_files() == before
    ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=1)
    assert sorted(list_blocks(ebs, sid)) == [0]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ebs.complete_snapshot(SnapshotId=ebs.start_snapshot(VolumeSize=1)["SnapshotId"], ChangedBlocksCount=0, Checksum=checksum, ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR")
    assert e.value.response["Reason"] in reasons(ebs, "ValidationExceptionReason")


def test_a_disabled_key_stops_get_snapshot_block_and_enabling_restores_it(ebs, kms, cleanup):
    key = kms.create_key()["KeyMetadata"]["Arn"]
    blocks = {5: os.urandom(BLOCK)}
    sid = write_snapshot(ebs, blocks, Encrypted=True, KmsKeyArn=key)
    cleanup["snapshots"].append(sid)
    token = list_blocks(ebs, sid)[5]
    kms.disable_key(KeyId=key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=5, BlockToken=token)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert e.value.response["Reason"] in reasons(ebs, "AccessDeniedExceptionReason")
    assert "DisabledException" in e.value.response["Error"]["Message"]
    kms.enable_key(KeyId=key)
    assert ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=5, BlockToken=token)["BlockData"].read() == blocks[5]


def test_list_changed_blocks_and_deleting_frees_only_unshared_blocks(ebs, ec2, cleanup):
    before = block_files()
    parent_blocks = {i: os.urandom(BLOCK) for i in (0, 1, 5, 300)}
    parent = write_snapshot(ebs, parent_blocks)
    cleanup["snapshots"].append(parent)
    written = {1: os.urandom(BLOCK), 7: os.urandom(BLOCK), 5: parent_blocks[5]}  # 5 rewritten with the same data: not a change
    child = ebs.start_snapshot(VolumeSize=1, ParentSnapshotId=parent)["SnapshotId"]
    cleanup["snapshots"].append(child)
    from ebs_blocks import put_blocks

    put_blocks(ebs, child, written)
    ebs.complete_snapshot(SnapshotId=child, ChangedBlocksCount=len(written))
    # Computed independently: the indices whose content differs between the two block sets.
    expected = sorted(i for i in set(parent_blocks) | set(written) if written.get(i, parent_blocks.get(i)) != parent_blocks.get(i))
    assert expected == [1, 7]
    changed = ebs.list_changed_blocks(FirstSnapshotId=parent, SecondSnapshotId=child)["ChangedBlocks"]
    assert [c["BlockIndex"] for c in changed] == expected
    assert "FirstBlockToken" not in changed[1] and changed[0]["FirstBlockToken"] != changed[0]["SecondBlockToken"]
    child_blocks = {**parent_blocks, **written}
    assert read_snapshot(ebs, child) == child_blocks
    assert block_files() == before + 6  # 0, 1, 5, 300, the new 1, 7
    ec2.delete_snapshot(SnapshotId=parent)
    assert block_files() == before + 5  # only the parent's block 1 was not shared
    assert read_snapshot(ebs, child) == child_blocks
    ec2.delete_snapshot(SnapshotId=child)
    assert block_files() == before


def test_an_ext4_image_written_with_put_snapshot_block_becomes_a_volume_that_mounts(ebs, ec2, cleanup):
    src = tempfile.mkdtemp(prefix="kmsvol-ebs-src-")
    files = {"hello.txt": b"hello from PutSnapshotBlock\n", "sub/random.bin": os.urandom(3 * MIB + 123)}
    for name, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
    img = os.path.join(tempfile.mkdtemp(prefix="kmsvol-ebs-img-"), "fs.img")
    with open(img, "wb") as f:
        f.truncate(64 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-d", src, img], check=True)
    with open(img, "rb") as f:
        blocks = blocks_of(f.read())
    sid = write_snapshot(ebs, blocks)
    cleanup["snapshots"].append(sid)
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    vol = ec2.create_volume(SnapshotId=sid, AvailabilityZone=instance["Placement"]["AvailabilityZone"])["VolumeId"]
    cleanup["volumes"].append(vol)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    ec2.attach_volume(VolumeId=vol, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol], WaiterConfig=FAST)
    dev = f"/dev/kmsvol/{vol}"
    deadline = time.monotonic() + 60
    while not os.path.exists(dev):
        assert time.monotonic() < deadline, f"{dev} did not appear"
        time.sleep(0.2)
    mnt = mount(cleanup, dev)
    for name, data in files.items():
        with open(os.path.join(mnt, name), "rb") as f:
            assert f.read() == data
    unmount(cleanup, mnt)


def test_an_ec2_snapshot_of_an_encrypted_volume_reads_back_through_get_snapshot_block(ebs, ec2, kms, cleanup):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    vol = ec2.create_volume(Size=1, Encrypted=True, KmsKeyId=key, AvailabilityZone=instance["Placement"]["AvailabilityZone"])["VolumeId"]
    cleanup["volumes"].append(vol)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    ec2.attach_volume(VolumeId=vol, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol], WaiterConfig=FAST)
    dev = f"/dev/kmsvol/{vol}"
    deadline = time.monotonic() + 60
    while not os.path.exists(dev):
        assert time.monotonic() < deadline, f"{dev} did not appear"
        time.sleep(0.2)
    data = os.urandom(BLOCK + 4096)
    with open(dev, "r+b") as f:
        f.seek(10 * BLOCK)
        f.write(data)
        os.fsync(f.fileno())
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    cleanup["snapshots"].append(snap)
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=FAST)
    got = read_snapshot(ebs, snap)
    assert sorted(got) == [10, 11]
    assert got[10] == data[:BLOCK]
    assert got[11] == data[BLOCK:].ljust(BLOCK, b"\0")
