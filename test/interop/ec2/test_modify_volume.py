"""EBS Elastic Volumes through boto3: grow an attached 1 GiB volume with ext4
on it to 2 GiB; the mounted filesystem keeps working on the grown device;
resize2fs grows the filesystem; the data is intact; the image and its LUKS2
segment (dynamic: it spans the payload) are larger."""
import hashlib
import json
import os
import subprocess
import time

from conftest import mount, unmount

FAST = {"Delay": 1, "MaxAttempts": 120}
GiB = 1 << 30


def wait_attached(ec2, volume_id):
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    deadline = time.monotonic() + 60
    while ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"][0]["State"] != "attached":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_grow_an_attached_volume_and_its_filesystem(ec2, kms, cleanup):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    volume_id = ec2.create_volume(Size=1, Encrypted=True, KmsKeyId=key, AvailabilityZone=instance["Placement"]["AvailabilityZone"])["VolumeId"]
    cleanup["volumes"].append(volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    dev = f"/dev/kmsvol/{volume_id}"
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    mnt = mount(cleanup, dev)
    with open(os.path.join(mnt, "data.bin"), "wb") as f:
        f.write(os.urandom(8 << 20))
        os.fsync(f.fileno())
    before = sha(os.path.join(mnt, "data.bin"))
    blocks_before = os.statvfs(mnt).f_blocks

    m = ec2.modify_volume(VolumeId=volume_id, Size=2)["VolumeModification"]
    assert (m["ModificationState"], m["OriginalSize"], m["TargetSize"], m["VolumeId"]) == ("modifying", 1, 2, volume_id)
    deadline = time.monotonic() + 60
    while True:
        mods = ec2.describe_volumes_modifications(VolumeIds=[volume_id])["VolumesModifications"]
        if mods[0]["ModificationState"] == "completed":
            break
        assert mods[0]["ModificationState"] in ("modifying", "optimizing"), mods[0]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert mods[0]["Progress"] == 100
    assert ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Size"] == 2

    size = int(subprocess.run(["blockdev", "--getsize64", dev], check=True, capture_output=True, text=True).stdout)
    assert size == 2 * GiB
    # The mounted filesystem keeps working on the grown device.
    with open(os.path.join(mnt, "more.bin"), "wb") as f:
        f.write(os.urandom(8 << 20))
        os.fsync(f.fileno())
    assert sha(os.path.join(mnt, "data.bin")) == before
    # ext4's online resize needs CAP_SYS_RESOURCE, which this sandbox's root lacks;
    # resize2fs grows it unmounted instead, on the still-attached device.
    unmount(cleanup, mnt)
    subprocess.run(["e2fsck", "-fy", dev], check=True, capture_output=True)
    r = subprocess.run(["resize2fs", dev], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mnt = mount(cleanup, dev)
    assert os.statvfs(mnt).f_blocks > blocks_before * 1.8
    assert sha(os.path.join(mnt, "data.bin")) == before

    # Shrinking is refused, as EBS refuses it.
    try:
        ec2.modify_volume(VolumeId=volume_id, Size=1)
        raise AssertionError("shrinking was accepted")
    except ec2.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidParameterValue"

    unmount(cleanup, mnt)
    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)

    image = os.path.join(os.environ["KMSVOL_HOME"], "volumes", f"{volume_id}.img")
    meta = json.loads(subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", image], check=True, capture_output=True, text=True).stdout)
    segment = meta["segments"]["0"]
    assert segment["size"] == "dynamic"
    assert os.path.getsize(image) - int(segment["offset"]) == 2 * GiB

    # Reattached, the volume is 2 GiB, the filesystem clean and the data intact.
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    assert int(subprocess.run(["blockdev", "--getsize64", dev], check=True, capture_output=True, text=True).stdout) == 2 * GiB
    subprocess.run(["e2fsck", "-fn", dev], check=True, capture_output=True)
    mnt = mount(cleanup, dev)
    assert sha(os.path.join(mnt, "data.bin")) == before
    unmount(cleanup, mnt)

    status = ec2.describe_volume_status(VolumeIds=[volume_id])["VolumeStatuses"][0]
    assert status["VolumeStatus"]["Status"] == "ok"
    assert ec2.describe_volume_attribute(VolumeId=volume_id, Attribute="autoEnableIO")["AutoEnableIO"] == {"Value": False}
