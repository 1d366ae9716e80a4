// Playout smoothing for a lossy, long link (docs/weak-links.md, "Playout delay").
//
// A lost video packet is repaired by a NACK and a retransmission: one round trip. On a rural link
// with 100 ms of RTT and a few per cent of loss, a repair that is itself lost (or a NACK lost on
// the way up) takes a second round trip, and the frame waiting for it arrives ~250 ms late: the
// picture freezes although nothing is lost in the end. Every couple of seconds this looks at what
// the subscribe connection needed (NACKs per received packet, the round-trip time) and, when the
// link repairs often over a long path, asks the browser to hold frames a little longer
// (RTCRtpReceiver.jitterBufferTarget, the same for audio and video so they stay in step): about two
// round trips. When the link is clean again for a while, the extra delay goes away. Browsers
// without jitterBufferTarget (Firefox today) are left as they are.

const SAMPLE_MS = 2000;
const QUIET_SAMPLES = 10; // ~20 s without repairs before the extra delay is dropped
const RTT_SAMPLES = 5; // the path's round trip: the least seen over the last ~10 s
export const MAX_TARGET_MS = 400;

// The playout delay to ask for, in ms (0: none), from the share of received video packets that
// needed a repair request and the round-trip time in seconds. Pure; the page's tests read it.
export function playoutTarget(repairShare, rttS) {
  if (!(repairShare >= 0.01) || !(rttS > 0)) return 0;
  const rounds = repairShare >= 0.03 ? 2.5 : 2; // more loss: more repairs lost in turn
  const ms = rounds * rttS * 1000 + 60;
  return Math.min(MAX_TARGET_MS, Math.max(repairShare >= 0.03 ? 120 : 0, Math.round(ms / 10) * 10));
}

// What the smoother decides from one 2-s sample to the next. Pure (no browser), so the page's
// tests can feed it a sequence. Two things it must not mistake for a lossy, long line:
// * the onset of a rate cap: a queue fills (the round trip measured through it jumps to 200 ms
//   and more) and a few packets are lost once, until the server moves the classroom to a lower
//   layer. A target of 2.5 such round trips (400 ms) then stayed for the rest of the lesson on a
//   line whose path is 1 ms long, and Chromium's picture stalled while its buffer grew. So the
//   round trip is the least of the last few samples (the path, not its queue), and
// * one bad sample: the repairs must show in two samples in a row before the delay is raised.
export class PlayoutPolicy {
  constructor() {
    this.targetMs = 0;
    this.quiet = 0;
    this.rtts = [];
    this.pending = 0; // what the previous sample wanted (0: nothing)
  }

  // One sample: the share of video packets that needed a repair, the round trip now (s).
  // Returns the target to apply, or null for no change.
  step(share, rttS) {
    if (rttS > 0) {
      this.rtts.push(rttS);
      if (this.rtts.length > RTT_SAMPLES) this.rtts.shift();
    }
    const path = this.rtts.length ? Math.min(...this.rtts) : 0;
    const wanted = playoutTarget(share, path);
    const previous = this.pending;
    this.pending = wanted;
    if (wanted > 0) this.quiet = 0;
    if (wanted > this.targetMs && previous > 0) { // up at once, on the second sample in a row
      const up = Math.min(wanted, previous);
      if (up <= this.targetMs) return null;
      this.targetMs = up;
      return up;
    }
    if (wanted === 0 && this.targetMs > 0 && ++this.quiet >= QUIET_SAMPLES) {
      this.targetMs = 0; // clean for a while: back to the browser's own choice
      return 0;
    }
    return null;
  }
}

export class PlayoutSmoother {
  constructor(pc, onChange = () => {}) {
    this.pc = pc;
    this.onChange = onChange;
    this.policy = new PlayoutPolicy();
    this.targetMs = 0;
    this.last = null; // {packets, nacks}
    this.supported = typeof RTCRtpReceiver !== "undefined" && "jitterBufferTarget" in RTCRtpReceiver.prototype;
    this.timer = this.supported ? setInterval(() => this.sample().catch(() => {}), SAMPLE_MS) : null;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample() {
    if (this.pc.connectionState === "closed") { this.stop(); return; }
    const report = await this.pc.getStats();
    let packets = 0, nacks = 0, rtt = 0;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        packets += s.packetsReceived || 0;
        nacks += s.nackCount || 0;
      }
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime)
        rtt = s.currentRoundTripTime;
    });
    const last = this.last;
    this.last = { packets, nacks };
    if (!last || packets <= last.packets) return;
    const next = this.policy.step((nacks - last.nacks) / (packets - last.packets), rtt);
    if (next !== null) this.apply(next);
  }

  apply(ms) {
    this.targetMs = ms;
    for (const r of this.pc.getReceivers()) {
      try { r.jitterBufferTarget = ms || null; } catch (e) { /* a closed receiver */ }
    }
    this.onChange(ms);
  }
}
