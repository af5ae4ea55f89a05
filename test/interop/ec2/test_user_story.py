"""A user's integration test of detach and reattach, written as a user would
write it against AWS: boto3 from Debian, only endpoint_url set."""
import json
import os
import subprocess
import time

from conftest import mount, unmount

FAST = {"Delay": 1, "MaxAttempts": 120}


def attachment_state(ec2, volume_id):
    atts = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"]
    return atts[0]["State"] if atts else None


def wait_attached(ec2, volume_id):
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    deadline = time.monotonic() + 60
    while attachment_state(ec2, volume_id) != "attached":
        assert time.monotonic() < deadline, f"{volume_id} did not become attached"
        time.sleep(0.2)


def events_of(volume_id):
    with open(os.path.join(os.environ["KMSVOL_HOME"], "events.log")) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return [e for e in events if any(r.endswith("/" + volume_id) for r in e["resources"])]


def test_detach_and_reattach_with_the_key_disabled_then_enabled(ec2, kms, cleanup):
    key = kms.create_key(Description="user story")["KeyMetadata"]["KeyId"]
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    zone = instance["Placement"]["AvailabilityZone"]

    vol = ec2.create_volume(Size=1, Encrypted=True, KmsKeyId=key, AvailabilityZone=zone, VolumeType="gp3")
    volume_id = vol["VolumeId"]
    cleanup["volumes"].append(volume_id)
    assert vol["State"] == "creating"
    assert vol["KmsKeyId"] == key
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    described = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert described["KmsKeyId"].endswith(":key/" + key)

    att = ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    assert att["State"] == "attaching" and att["Device"] == "/dev/sdf"
    wait_attached(ec2, volume_id)
    dev = f"/dev/kmsvol/{volume_id}"
    assert os.path.islink(dev) and os.path.realpath(dev).startswith("/dev/loop")

    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    mnt = mount(cleanup, dev)
    with open(os.path.join(mnt, "before.txt"), "w") as f:
        f.write("written before the key was disabled\n")
        os.fsync(f.fileno())

    kms.disable_key(KeyId=key)
    # The attached volume keeps working: its card holds the data key.
    with open(os.path.join(mnt, "after.txt"), "w") as f:
        f.write("written after the key was disabled\n" * 1000)
        os.fsync(f.fileno())
    with open(os.path.join(mnt, "before.txt")) as f:
        assert f.read() == "written before the key was disabled\n"

    unmount(cleanup, mnt)
    det = ec2.detach_volume(VolumeId=volume_id)
    assert det["State"] == "detaching"
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    assert not os.path.lexists(dev)

    # Reattach with the key disabled: EC2 answers attaching; the attachment then fails.
    failed_before = len([e for e in events_of(volume_id) if e["detail"]["event"] == "attachVolume" and e["detail"]["result"] == "failed"])
    att = ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    assert att["State"] == "attaching"
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    assert ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"] == []
    failed = [e for e in events_of(volume_id) if e["detail"]["event"] == "attachVolume" and e["detail"]["result"] == "failed"]
    assert len(failed) == failed_before + 1
    assert failed[-1]["detail-type"] == "EBS Volume Notification"
    assert failed[-1]["detail"]["cause"].startswith("DisabledException: ")
    assert not os.path.lexists(dev)

    kms.enable_key(KeyId=key)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    mnt = mount(cleanup, dev)
    with open(os.path.join(mnt, "before.txt")) as f:
        assert f.read() == "written before the key was disabled\n"
    with open(os.path.join(mnt, "after.txt")) as f:
        assert f.read() == "written after the key was disabled\n" * 1000
    unmount(cleanup, mnt)

    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    cleanup["volumes"].remove(volume_id)
