"""The volume story on a key in an AWS CloudHSM key store, written as a user
would write it against AWS: boto3 from Debian, only endpoint_url set. The
cluster comes from `kmsvol cloudhsmv2 create-cluster` (CLUSTER_ID, its
certificate in CLUSTER_CERT and kmsuser's password in KMSUSER_PASSWORD)."""
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError
from conftest import mount, unmount
from test_user_story import FAST, events_of, wait_attached


def wait_state(kms, store_id, want):
    deadline = time.monotonic() + 60
    while True:
        s = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
        if s["ConnectionState"] == want:
            return s
        assert time.monotonic() < deadline, f"{store_id} stayed {s['ConnectionState']}"
        time.sleep(0.2)


def test_a_volume_on_a_cloudhsm_key_outlives_a_disconnect_and_attaches_again_after_reconnect(ec2, kms, cleanup):
    with open(os.environ["CLUSTER_CERT"]) as f:
        cert = f.read()
    store = kms.create_custom_key_store(
        CustomKeyStoreName="hsm-story",
        CloudHsmClusterId=os.environ["CLUSTER_ID"],
        TrustAnchorCertificate=cert,
        KeyStorePassword=os.environ["KMSUSER_PASSWORD"],
    )["CustomKeyStoreId"]
    assert wait_state(kms, store, "DISCONNECTED")["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    wait_state(kms, store, "CONNECTED")

    md = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store, Description="hsm story")["KeyMetadata"]
    key = md["KeyId"]
    assert md["Origin"] == "AWS_CLOUDHSM" and md["CustomKeyStoreId"] == store and md["CloudHsmClusterId"] == os.environ["CLUSTER_ID"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"through the token")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"through the token"

    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    zone = instance["Placement"]["AvailabilityZone"]
    volume_id = ec2.create_volume(Size=1, Encrypted=True, KmsKeyId=key, AvailabilityZone=zone)["VolumeId"]
    cleanup["volumes"].append(volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    dev = f"/dev/kmsvol/{volume_id}"
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    mnt = mount(cleanup, dev)
    with open(os.path.join(mnt, "before.txt"), "w") as f:
        f.write("written while the store was connected\n")
        os.fsync(f.fileno())

    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    wait_state(kms, store, "DISCONNECTED")
    # The attached volume keeps serving: its card holds the data key.
    with open(os.path.join(mnt, "after.txt"), "w") as f:
        f.write("written after the store was disconnected\n" * 1000)
        os.fsync(f.fileno())
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert e.value.response["Error"]["Code"] == "KMSInvalidStateException"
    # A store that holds keys cannot be deleted.
    with pytest.raises(ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=store)
    assert e.value.response["Error"]["Code"] == "CustomKeyStoreHasCMKsException"

    unmount(cleanup, mnt)
    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)

    # A new attach fails: attaching, then available again, with an event naming the store and its state.
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    failed = [e for e in events_of(volume_id) if e["detail"]["event"] == "attachVolume" and e["detail"]["result"] == "failed"]
    assert failed, "no failed attachVolume event"
    cause = failed[-1]["detail"]["cause"]
    assert cause.startswith("KMSInvalidStateException: ") and store in cause and "DISCONNECTED" in cause

    kms.connect_custom_key_store(CustomKeyStoreId=store)
    wait_state(kms, store, "CONNECTED")
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    mnt = mount(cleanup, dev)
    with open(os.path.join(mnt, "before.txt")) as f:
        assert f.read() == "written while the store was connected\n"
    with open(os.path.join(mnt, "after.txt")) as f:
        assert f.read() == "written after the store was disconnected\n" * 1000
    unmount(cleanup, mnt)
    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=volume_id)
    cleanup["volumes"].remove(volume_id)
