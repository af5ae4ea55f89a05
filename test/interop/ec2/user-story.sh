#!/bin/bash
# The user story of test_user_story.py with the AWS CLI v2 from Debian, as a
# user would script it: only --endpoint-url set (credentials and region from
# the environment). Exits non-zero at the first step that does not hold.
set -euo pipefail
AWS=(/usr/bin/aws --endpoint-url "$KMSVOL_ENDPOINT" --output text)
MNT=$(mktemp -d /tmp/kmsvol-cli-mnt-XXXXXX)
VOL=""

cleanup() {
  umount -l "$MNT" 2>/dev/null || true
  rmdir "$MNT" 2>/dev/null || true
  if [ -n "$VOL" ] && [ "$("${AWS[@]}" ec2 describe-volumes --volume-ids "$VOL" --query 'length(Volumes[0].Attachments)' 2>/dev/null || echo 0)" != 0 ]; then
    "${AWS[@]}" ec2 detach-volume --volume-id "$VOL" --force >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

fail() { echo "FAILED: $*" >&2; exit 1; }

# Poll for a condition, at most 60 s.
wait_for() {
  local want=$1; shift
  for _ in $(seq 300); do
    [ "$("$@")" = "$want" ] && return 0
    sleep 0.2
  done
  fail "waited 60 s for '$want' from: $*"
}
attachment_state() { "${AWS[@]}" ec2 describe-volumes --volume-ids "$VOL" --query 'Volumes[0].Attachments[0].State'; }
failed_attaches() { grep -c "\"resources\":\[\"arn:aws:ec2:[^\"]*:volume/$VOL\"\].*\"event\":\"attachVolume\",\"result\":\"failed\"" "$KMSVOL_HOME/events.log" || true; }

KEY=$("${AWS[@]}" kms create-key --description "cli user story" --query KeyMetadata.KeyId)
INSTANCE=$("${AWS[@]}" ec2 describe-instances --query 'Reservations[0].Instances[0].InstanceId')
ZONE=$("${AWS[@]}" ec2 describe-instances --query 'Reservations[0].Instances[0].Placement.AvailabilityZone')

read -r VOL STATE GIVEN < <("${AWS[@]}" ec2 create-volume --size 1 --encrypted --kms-key-id "$KEY" --availability-zone "$ZONE" \
  --tag-specifications 'ResourceType=volume,Tags=[{Key=Name,Value=cli-story}]' --query '[VolumeId,State,KmsKeyId]')
[ "$STATE" = creating ] || fail "create-volume answered $STATE, not creating"
[ "$GIVEN" = "$KEY" ] || fail "create-volume answered KmsKeyId $GIVEN, not the key id given ($KEY)"
"${AWS[@]}" ec2 wait volume-available --volume-ids "$VOL"
[ "$("${AWS[@]}" ec2 describe-volumes --filters Name=tag:Name,Values=cli-story --query 'Volumes[0].VolumeId')" = "$VOL" ] || fail "the tag filter does not find $VOL"

[ "$("${AWS[@]}" ec2 attach-volume --volume-id "$VOL" --instance-id "$INSTANCE" --device /dev/sdf --query State)" = attaching ] || fail "attach-volume did not answer attaching"
wait_for attached attachment_state
DEV=/dev/kmsvol/$VOL
[ -L "$DEV" ] || fail "$DEV is not a symlink"
case "$(readlink -f "$DEV")" in /dev/loop*) ;; *) fail "$DEV does not point at a loop device";; esac
[ "$("${AWS[@]}" ec2 describe-instances --query "Reservations[0].Instances[0].BlockDeviceMappings[?Ebs.VolumeId=='$VOL'].DeviceName | [0]")" = /dev/sdf ] || fail "describe-instances does not show $VOL at /dev/sdf"

mkfs.ext4 -q "$DEV"
mount "$DEV" "$MNT"
echo "written before the key was disabled" > "$MNT/before.txt"
sync "$MNT/before.txt"

"${AWS[@]}" kms disable-key --key-id "$KEY"
head -c 4000000 /dev/urandom > "$MNT/after.bin"
sync "$MNT/after.bin"
SUM=$(sha256sum < "$MNT/after.bin")
[ "$(cat "$MNT/before.txt")" = "written before the key was disabled" ] || fail "before.txt changed while attached"

umount "$MNT"
[ "$("${AWS[@]}" ec2 detach-volume --volume-id "$VOL" --query State)" = detaching ] || fail "detach-volume did not answer detaching"
"${AWS[@]}" ec2 wait volume-available --volume-ids "$VOL"
[ ! -e "$DEV" ] || fail "$DEV is still there after detach"

BEFORE=$(failed_attaches)
[ "$("${AWS[@]}" ec2 attach-volume --volume-id "$VOL" --instance-id "$INSTANCE" --device /dev/sdf --query State)" = attaching ] || fail "attach with the key disabled did not answer attaching"
"${AWS[@]}" ec2 wait volume-available --volume-ids "$VOL"
[ "$("${AWS[@]}" ec2 describe-volumes --volume-ids "$VOL" --query 'length(Volumes[0].Attachments)')" = 0 ] || fail "the failed attach left an attachment"
[ "$(failed_attaches)" = $((BEFORE + 1)) ] || fail "no attachVolume failed event recorded for $VOL"
tail -n 5 "$KMSVOL_HOME/events.log" | grep -q "\"cause\":\"DisabledException: " || fail "the event does not give DisabledException as the cause"

"${AWS[@]}" kms enable-key --key-id "$KEY"
"${AWS[@]}" ec2 attach-volume --volume-id "$VOL" --instance-id "$INSTANCE" --device /dev/sdf >/dev/null
wait_for attached attachment_state
mount "$DEV" "$MNT"
[ "$(cat "$MNT/before.txt")" = "written before the key was disabled" ] || fail "before.txt did not survive"
[ "$(sha256sum < "$MNT/after.bin")" = "$SUM" ] || fail "after.bin did not survive"
umount "$MNT"
# A Device that is not the attachment's is refused as EC2 refuses it, and nothing is detached.
if OUT=$("${AWS[@]}" ec2 detach-volume --volume-id "$VOL" --device /dev/sdg 2>&1); then fail "detach-volume --device /dev/sdg succeeded: $OUT"; fi
case "$OUT" in *"An error occurred (InvalidAttachment.NotFound) when calling the DetachVolume operation: Volume '$VOL' is not attached at '/dev/sdg'; it is attached at '/dev/sdf'."*) ;;
  *) fail "detach-volume --device /dev/sdg: $OUT";; esac
[ "$(attachment_state)" = attached ] || fail "a refused detach changed the attachment"
"${AWS[@]}" ec2 detach-volume --volume-id "$VOL" --instance-id "$INSTANCE" --device /dev/sdf >/dev/null
"${AWS[@]}" ec2 wait volume-available --volume-ids "$VOL"
"${AWS[@]}" ec2 delete-volume --volume-id "$VOL"
"${AWS[@]}" ec2 wait volume-deleted --volume-ids "$VOL"
VOL=""
echo "cli user story: ok"
