// Drives Corti's official JavaScript SDK (@corti/sdk) against the simulator's
// streams websocket, as a recording page would: connect with a configuration
// and wait for CONFIG_ACCEPTED (the SDK's own handshake), send WebM/Opus
// chunks, end, and wait for ENDED. The token is one of limited scope
// ("streams"), minted by the test as a server would for a browser. Prints one
// JSON line of what it saw; any error exits 1.
//
//   SIM_STREAM_ORIGIN=ws://127.0.0.1:PORT SIM_BASE=http://127.0.0.1:PORT/v2 \
//   SIM_TENANT=base SIM_TOKEN=... SIM_INTERACTION=<id> SIM_AUDIO=/tmp/audio.json \
//   node stream_check.mjs
//
// SIM_AUDIO is a JSON list of base64 chunks (MediaRecorder's 250 ms pieces).
import { readFileSync } from "node:fs";
import { CortiClient } from "@corti/sdk";

const env = process.env;
const base = new URL(env.SIM_BASE);
const chunks = JSON.parse(readFileSync(env.SIM_AUDIO, "utf8")).map((chunk) =>
  Buffer.from(chunk, "base64"),
);
const client = new CortiClient({
  environment: {
    base: env.SIM_BASE,
    wss: `${env.SIM_STREAM_ORIGIN}/audio-bridge/v2`,
    login: `http://${base.host}/realms`,
    agents: `http://${base.host}`,
  },
  tenantName: env.SIM_TENANT,
  auth: { accessToken: env.SIM_TOKEN },
  maxRetries: 0,
});

// No step may hang the test: each waits at most this long.
const STEP_MS = 10_000;
const seen = { types: [], transcripts: [] };
let ended;
const endedPromise = new Promise((resolve) => {
  ended = resolve;
});

const socket = await client.stream.connect({
  id: env.SIM_INTERACTION,
  configuration: {
    transcription: {
      primaryLanguage: "en",
      isDiarization: false,
      isMultichannel: false,
      participants: [{ channel: 0, role: "multiple" }],
    },
    mode: { type: "transcription" },
  },
  // A test must fail, not retry, when the simulator closes the socket.
  reconnectAttempts: 1,
});
seen.types.push("CONFIG_ACCEPTED");

socket.on("message", (message) => {
  seen.types.push(message.type);
  if (message.type === "transcript") {
    for (const segment of message.data) {
      seen.transcripts.push({
        id: segment.id,
        transcript: segment.transcript,
        final: segment.final,
        start: segment.time.start,
        end: segment.time.end,
      });
    }
  } else if (message.type === "usage") {
    seen.credits = message.credits;
  } else if (message.type === "ENDED") {
    ended();
  }
});
socket.on("error", (error) => {
  seen.errors = [...(seen.errors ?? []), String(error?.message ?? error)];
});

let bytes = 0;
for (const chunk of chunks) {
  socket.sendAudio(chunk);
  bytes += chunk.length;
}
seen.bytesSent = bytes;
socket.sendEnd({ type: "end" });

const timer = setTimeout(() => {
  console.error(`no ENDED within ${STEP_MS} ms: ${JSON.stringify(seen)}`);
  process.exit(1);
}, STEP_MS);
await endedPromise;
clearTimeout(timer);
// The SDK reconnects a socket the server closes; ours is done.
socket.close();
console.log(JSON.stringify(seen));
