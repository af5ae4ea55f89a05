/**
 * What each EC2 command does, for `kmsvol ec2 <command> --help`: the first
 * sentence of botocore's documentation of the operation, where it holds for
 * kmsvol; test/unit/ec2/summaries.test.ts holds them against the model and
 * lists where kmsvol says something else, and why.
 */
export const SUMMARIES: Readonly<Record<string, string>> = {
  CreateVolume: 'Creates an EBS volume that can be attached to an instance in the same Availability Zone.',
  DescribeVolumes: 'Describes the specified EBS volumes or all of your EBS volumes.',
  DeleteVolume: 'Deletes the specified EBS volume.',
  AttachVolume: 'Attaches an EBS volume to a running or stopped instance and exposes it to the instance with the specified device name.',
  DetachVolume: 'Detaches an EBS volume from an instance.',
  ModifyVolume: 'You can modify several parameters of an existing EBS volume, including volume size, volume type, and IOPS capacity.',
  DescribeVolumesModifications: 'Describes the most recent volume modification request for the specified EBS volumes.',
  DescribeVolumeStatus: 'Describes the status of the specified volumes.',
  DescribeVolumeAttribute: 'Describes the specified attribute of the specified volume.',
  DescribeInstances: 'Describes the specified instances or all instances.',
  CreateSnapshot: 'Creates a snapshot of an EBS volume and stores it in the kmsvol home.',
  CopySnapshot: 'Copies a point-in-time snapshot of an EBS volume and stores it in the kmsvol home.',
  DescribeSnapshots: 'Describes the specified EBS snapshots available to you or all of the EBS snapshots available to you.',
  DeleteSnapshot: 'Deletes the specified snapshot.',
  CreateTags: 'Adds or overwrites only the specified tags for the specified Amazon EC2 resource or resources.',
  DeleteTags: 'Deletes the specified set of tags from the specified set of resources.',
  DescribeTags: 'Describes the specified tags for your EC2 resources.',
  EnableEbsEncryptionByDefault: 'Enables EBS encryption by default for your account in the current Region.',
  DisableEbsEncryptionByDefault: 'Disables EBS encryption by default for your account in the current Region.',
  GetEbsEncryptionByDefault: 'Describes whether EBS encryption by default is enabled for your account in the current Region.',
  GetEbsDefaultKmsKeyId: 'Describes the default KMS key for EBS encryption by default for your account in this Region.',
  ModifyEbsDefaultKmsKeyId: 'Changes the default KMS key for EBS encryption by default for your account in this Region.',
  ResetEbsDefaultKmsKeyId: 'Resets the default KMS key for EBS encryption for your account in this Region to the Amazon Web Services managed KMS key for EBS.',
};
