// Drives Corti's official JavaScript SDK (@corti/sdk) against the simulator:
// create, a paged list, a filtered list, get, update and delete, as a client
// that no one here wrote would. Prints one JSON line of what it saw; any
// error (a request the SDK refuses to send, an answer it cannot read) exits 1.
//
//   SIM_BASE=http://127.0.0.1:PORT/v2 SIM_LOGIN=http://127.0.0.1:PORT/realms \
//   SIM_TENANT=base SIM_CLIENT_ID=... SIM_CLIENT_SECRET=... node sdk_check.mjs
import { CortiClient, CortiError } from "@corti/sdk";

const env = process.env;
const base = new URL(env.SIM_BASE);
const client = new CortiClient({
  environment: {
    base: env.SIM_BASE,
    wss: `ws://${base.host}/audio-bridge/v2`,
    login: env.SIM_LOGIN,
    agents: `http://${base.host}`,
  },
  tenantName: env.SIM_TENANT,
  auth: { clientId: env.SIM_CLIENT_ID, clientSecret: env.SIM_CLIENT_SECRET },
  maxRetries: 0,
});

const seen = {};
const created = [];
for (let n = 1; n <= 5; n++) {
  const answer = await client.interactions.create({
    assignedUserId: "6b0d6f8e-4a8b-4c35-9a53-2c2b1f8e0a11",
    encounter: {
      identifier: `SDK-ENC-${n}`,
      status: "in-progress",
      type: "consultation",
      period: { startedAt: new Date(Date.UTC(2026, 2, 29, 8, n)) },
      title: `SDK visit ${n}`,
    },
    patient: n % 2
      ? { identifier: "SDK-PAT-ODD", name: "Søren Ødegård", gender: "male",
          birthDate: new Date(Date.UTC(1980, 0, 2)) }
      : { identifier: `SDK-PAT-${n}` },
  });
  created.push(answer.interactionId);
  seen.websocketUrl = answer.websocketUrl;
}
seen.created = created;

// Every page of 2 until an empty one (the SDK's own paging).
const listed = [];
const pager = await client.interactions.list({ pageSize: 2, sort: "createdAt", direction: "asc" });
for await (const item of pager) listed.push(item.id);
seen.listed = listed;

const odd = [];
for await (const item of await client.interactions.list({ patient: "SDK-PAT-ODD", pageSize: 10 })) {
  odd.push(item.id);
}
seen.byPatient = odd;

const statuses = [];
for await (const item of await client.interactions.list({ encounterStatus: ["in-progress"], pageSize: 50 })) {
  statuses.push(item.encounter.status);
}
seen.inProgress = statuses.length;

const one = await client.interactions.get(created[0]);
seen.got = {
  id: one.id,
  identifier: one.encounter.identifier,
  startedAt: one.encounter.period.startedAt.toISOString(),
  patientName: one.patient.name,
  createdAt: one.createdAt instanceof Date,
};

const ended = new Date(Date.UTC(2026, 2, 29, 9, 0));
const updated = await client.interactions.update(created[0], {
  encounter: {
    status: "completed",
    period: { startedAt: one.encounter.period.startedAt, endedAt: ended },
    title: "SDK visit 1, ended",
  },
  patient: { identifier: "SDK-PAT-ODD", name: "Søren Ødegaard" },
});
seen.updated = {
  status: updated.encounter.status,
  endedAt: updated.encounter.period.endedAt.toISOString(),
  title: updated.encounter.title,
  patientName: updated.patient.name,
  gender: updated.patient.gender,
};

await client.interactions.delete(created[1]);
try {
  await client.interactions.get(created[1]);
  seen.afterDelete = "still there";
} catch (error) {
  seen.afterDelete = error instanceof CortiError ? error.statusCode : String(error);
}
try {
  await client.interactions.delete(created[1]);
  seen.secondDelete = "accepted";
} catch (error) {
  seen.secondDelete = error instanceof CortiError ? error.statusCode : String(error);
}

console.log(JSON.stringify(seen));
