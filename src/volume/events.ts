import crypto from 'node:crypto';
import { appendPrivate } from '../home.js';
import { readJsonLines } from '../jsonl.js';

/**
 * The event log: CloudWatch-style "EBS Volume Notification" events, one JSON
 * line each, for volume operations and every attach failure.
 */
export interface VolumeEvent {
  version: '0';
  id: string;
  'detail-type': 'EBS Volume Notification' | 'EBS Snapshot Notification';
  source: 'aws.ec2';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: { event: string; result: string; cause: string; 'request-id': string };
}

export class EventLog {
  constructor(
    private readonly file: string,
    private readonly region: string,
    private readonly account: string,
  ) {}

  /** Record an event about a volume (vol-…) or a snapshot (snap-…). */
  record(resourceId: string, event: string, result: string, cause = '', time = new Date()): VolumeEvent {
    const snapshot = resourceId.startsWith('snap-');
    const e: VolumeEvent = {
      version: '0',
      id: crypto.randomUUID(),
      'detail-type': snapshot ? 'EBS Snapshot Notification' : 'EBS Volume Notification',
      source: 'aws.ec2',
      account: this.account,
      time: time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: this.region,
      // EC2's ARNs: snapshots carry no account, volumes do.
      resources: [snapshot ? `arn:aws:ec2:${this.region}::snapshot/${resourceId}` : `arn:aws:ec2:${this.region}:${this.account}:volume/${resourceId}`],
      detail: { event, result, cause, 'request-id': crypto.randomUUID() },
    };
    appendPrivate(this.file, `${JSON.stringify(e)}\n`);
    return e;
  }

  static read(file: string): VolumeEvent[] {
    return readJsonLines<VolumeEvent>(file);
  }
}
