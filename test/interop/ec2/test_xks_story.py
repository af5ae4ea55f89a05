"""The volume story on a key in an external key store, with boto3 from Debian
(only endpoint_url set). The XKS proxy (`kmsvol xks-proxy`) and its
credential come from the environment: XKS_ENDPOINT, XKS_PATH, XKS_AK, XKS_SK,
XKS_KEY."""
import os
import subprocess

import pytest
from botocore.exceptions import ClientError
from conftest import mount, unmount
from test_cloudhsm_story import wait_state
from test_user_story import FAST, events_of, wait_attached


def test_a_volume_on_an_external_key_store_key_outlives_a_disconnect(ec2, kms, cleanup):
    store = kms.create_custom_key_store(
        CustomKeyStoreName="hyok-story",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint=os.environ["XKS_ENDPOINT"],
        XksProxyUriPath=os.environ["XKS_PATH"],
        XksProxyAuthenticationCredential={"AccessKeyId": os.environ["XKS_AK"], "RawSecretAccessKey": os.environ["XKS_SK"]},
    )["CustomKeyStoreId"]
    described = wait_state(kms, store, "DISCONNECTED")
    assert described["XksProxyConfiguration"]["UriPath"] == os.environ["XKS_PATH"]
    with pytest.raises(ClientError) as e:
        kms.create_custom_key_store(
            CustomKeyStoreName="vpc",
            CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
            XksProxyUriEndpoint="https://myproxy.example.com",
            XksProxyUriPath="/kms/xks/v1",
            XksProxyVpcEndpointServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-example",
            XksProxyAuthenticationCredential={"AccessKeyId": os.environ["XKS_AK"], "RawSecretAccessKey": os.environ["XKS_SK"]},
        )
    assert e.value.response["Error"]["Code"] == "XksProxyVpcEndpointServiceNotFoundException"
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    wait_state(kms, store, "CONNECTED")

    md = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store, XksKeyId=os.environ["XKS_KEY"])["KeyMetadata"]
    assert md["Origin"] == "EXTERNAL_KEY_STORE" and md["XksKeyConfiguration"] == {"Id": os.environ["XKS_KEY"]}
    key = md["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"hold your own key", EncryptionContext={"a": "b"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"hold your own key"

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
        f.write("before\n")
        os.fsync(f.fileno())

    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    wait_state(kms, store, "DISCONNECTED")
    with open(os.path.join(mnt, "after.txt"), "w") as f:
        f.write("after the disconnect\n" * 1000)
        os.fsync(f.fileno())
    unmount(cleanup, mnt)
    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)

    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    failed = [e for e in events_of(volume_id) if e["detail"]["event"] == "attachVolume" and e["detail"]["result"] == "failed"]
    assert failed and failed[-1]["detail"]["cause"].startswith("KMSInvalidStateException: ") and store in failed[-1]["detail"]["cause"]

    kms.connect_custom_key_store(CustomKeyStoreId=store)
    wait_state(kms, store, "CONNECTED")
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    mnt = mount(cleanup, dev)
    with open(os.path.join(mnt, "before.txt")) as f:
        assert f.read() == "before\n"
    with open(os.path.join(mnt, "after.txt")) as f:
        assert f.read() == "after the disconnect\n" * 1000
    unmount(cleanup, mnt)
    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=volume_id)
    cleanup["volumes"].remove(volume_id)
