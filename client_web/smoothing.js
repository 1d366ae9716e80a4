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
export const MAX_TARGET_MS = 400;

// The playout delay to ask for, in ms (0: none), from the share of received video packets that
// needed a repair request and the round-trip time in seconds. Pure; the page's tests read it.
export function playoutTarget(repairShare, rttS) {
  if (!(repairShare >= 0.01) || !(rttS > 0)) return 0;
  const rounds = repairShare >= 0.03 ? 2.5 : 2; // more loss: more repairs lost in turn
  const ms = rounds * rttS * 1000 + 60;
  return Math.min(MAX_TARGET_MS, Math.max(repairShare >= 0.03 ? 120 : 0, Math.round(ms / 10) * 10));
}

export class PlayoutSmoother {
  constructor(pc, onChange = () => {}) {
    this.pc = pc;
    this.onChange = onChange;
    this.targetMs = 0;
    this.quiet = 0;
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
    const share = (nacks - last.nacks) / (packets - last.packets);
    const wanted = playoutTarget(share, rtt);
    if (wanted > this.targetMs) { // up at once
      this.quiet = 0;
      this.apply(wanted);
    } else if (wanted === 0 && this.targetMs > 0 && ++this.quiet >= QUIET_SAMPLES) {
      this.apply(0); // clean for a while: back to the browser's own choice
    } else if (wanted > 0) {
      this.quiet = 0;
    }
  }

  apply(ms) {
    this.targetMs = ms;
    for (const r of this.pc.getReceivers()) {
      try { r.jitterBufferTarget = ms || null; } catch (e) { /* a closed receiver */ }
    }
    this.onChange(ms);
  }
}
