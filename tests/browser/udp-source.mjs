// A steady UDP source for the live view's load test: RATE datagrams a second to HOST:PORT for
// SECONDS, paced against the clock (a late tick sends what is due). Prints how many it sent.
//   node udp-source.mjs HOST PORT RATE SECONDS
import dgram from "node:dgram";

const [host, port, rate, seconds] = process.argv.slice(2);
const socket = dgram.createSocket("udp4");
const payload = Buffer.alloc(32, 0x61);
const started = performance.now();
let sent = 0;
const tick = () => {
  const elapsed = (performance.now() - started) / 1000;
  const due = Math.min(Math.floor(elapsed * Number(rate)), Math.floor(Number(rate) * Number(seconds)));
  while (sent < due) {
    payload.writeUInt32BE(sent, 0);
    socket.send(payload, Number(port), host);
    sent++;
  }
  if (elapsed < Number(seconds)) setTimeout(tick, 5);
  else setTimeout(() => {
    console.log(JSON.stringify({ sent }));
    socket.close();
  }, 100);
};
tick();
