/**
 * Request members by name, across every EC2 operation kmsvol serves: the
 * type each has on the wire and in the CLI, its name on the Query wire where
 * that is not the member name (botocore's queryName, else its locationName
 * capitalized: `VolumeIds` is `VolumeId.1`, `VolumeId.2`…), and the CLI's
 * help. Which members an operation takes is its entry in the registry
 * (operations.ts); test/unit/ec2/model.test.ts holds both against botocore's
 * EC2 model, so a member whose name or type differs from AWS's fails there.
 */
export type Shape = 'string' | 'integer' | 'boolean' | { list: Shape } | { struct: Members };
export type Members = Record<string, { shape: Shape; wire?: string }>;

/** How the CLI reads a list of structures given in the AWS CLI's shorthand: one parser per structure kind. */
export type StructKind = 'filter' | 'tag' | 'tagSpecification';

export interface MemberSpec {
  shape: Shape;
  wire?: string;
  /** For a list of structures: which one (the CLI's shorthand parser). */
  kind?: StructKind;
  /** The CLI's help for the option (where kmsvol has something to add to AWS's meaning). */
  help?: string;
}

const m = (shape: Shape, wire?: string) => ({ shape, ...(wire ? { wire } : {}) });
const TAG: Shape = { struct: { Key: m('string'), Value: m('string') } };

/** The shapes several members share. */
export const S = {
  str: m('string'),
  int: m('integer'),
  bool: m('boolean'),
  strList: (wire: string) => m({ list: 'string' }, wire),
  tags: (wire = 'Tag') => ({ ...m({ list: TAG }, wire), kind: 'tag' as const }),
  filters: { ...m({ list: { struct: { Name: m('string'), Values: m({ list: 'string' }, 'Value') } } }, 'Filter'), kind: 'filter' as const },
  tagSpecifications: {
    ...m({ list: { struct: { ResourceType: m('string'), Tags: m({ list: TAG }, 'Tag') } } }, 'TagSpecification'),
    kind: 'tagSpecification' as const,
  },
};

export const MEMBERS: Readonly<Record<string, MemberSpec>> = {
  AvailabilityZone: S.str,
  Attribute: S.str,
  ClientToken: S.str,
  Description: S.str,
  DestinationOutpostArn: S.str,
  DestinationRegion: S.str,
  Device: S.str,
  DryRun: { ...S.bool, help: 'check the request and permissions without doing it (DryRunOperation when it would succeed)' },
  Encrypted: S.bool,
  Filters: S.filters,
  Force: S.bool,
  InstanceId: S.str,
  InstanceIds: S.strList('InstanceId'),
  Iops: S.int,
  KmsKeyId: S.str,
  MaxResults: S.int,
  MultiAttachEnabled: S.bool,
  NextToken: S.str,
  OutpostArn: S.str,
  OwnerIds: S.strList('Owner'),
  PresignedUrl: S.str,
  Resources: S.strList('ResourceId'),
  RestorableByUserIds: S.strList('RestorableBy'),
  Size: S.int,
  SnapshotId: S.str,
  SnapshotIds: S.strList('SnapshotId'),
  SourceRegion: S.str,
  SourceSnapshotId: S.str,
  TagSpecifications: S.tagSpecifications,
  Tags: S.tags(),
  Throughput: S.int,
  VolumeId: S.str,
  VolumeIds: S.strList('VolumeId'),
  VolumeType: S.str,
};

/**
 * kmsvol's own members, taken by its CLI and API only (never on the EC2
 * wire, and not in AWS's model): see the entries' `local` in operations.ts.
 */
export const LOCAL_MEMBERS: Readonly<Record<string, MemberSpec>> = {
  Loop: { shape: 'boolean', help: 'also attach /dev/loopN (linked as /dev/kmsvol/<volume-id>)' },
  Foreground: { shape: 'boolean', help: 'run the card in this process until it is detached' },
};

/** A member's spec; one missing from MEMBERS is a registry bug that test/unit/ec2/registry.test.ts reports. */
export function memberSpec(name: string): MemberSpec {
  return MEMBERS[name] ?? LOCAL_MEMBERS[name] ?? S.str;
}
