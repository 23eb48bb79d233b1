// The console: sign-in, the pipelines, and one pipeline (graph, counts, lag, rejected records,
// workers, stage state, deletions, audit). Pages by URL hash; each refreshes what changes
// every REFRESH_MS and leaves the operator's inputs alone.

import { api, session, signIn, signOut } from "./api.js";
import { confirmAction, h, replace, table, time } from "./dom.js";
import { formatNumber, lineChart, stageGraph } from "./svg.js";

const REFRESH_MS = 2000;
const main = document.querySelector("main");
const who = document.querySelector("#who");
let timer = null;

function route() {
  clearInterval(timer);
  const current = session();
  who.replaceChildren();
  if (!current) return signInPage();
  who.append(
    `${current.orgId} · ${current.appKey} `,
    h("button", { type: "button", class: "secondary", onclick: () => { signOut(); route(); } }, "Sign out"),
  );
  const match = location.hash.match(/^#\/pipeline\/([^/]+)$/);
  return match ? pipelinePage(decodeURIComponent(match[1])) : pipelinesPage();
}

// Runs `refresh` now and every REFRESH_MS while the page is shown; errors show in `status`.
function every(refresh, status) {
  const run = () =>
    refresh().then(
      () => status.replaceChildren(),
      (e) => replace(status, h("p", { class: "error", role: "alert" }, e.message)),
    );
  run();
  timer = setInterval(run, REFRESH_MS);
  return run;
}

function signInPage() {
  const error = h("p", { class: "error", role: "alert" });
  const field = (label, name, type = "text") =>
    h("label", {}, label, h("input", { name, type, required: true, autocomplete: type === "password" ? "off" : name }));
  const form = h(
    "form",
    { class: "signin" },
    h("h2", {}, "Sign in"),
    field("Org ID", "orgId"),
    field("App key", "appKey"),
    field("App secret", "appSecret", "password"),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    form.elements.appSecret.value = ""; // used once, to sign the token request
    try {
      await signIn(data.get("orgId").trim(), data.get("appKey").trim(), data.get("appSecret"));
      location.hash = "#/pipelines";
      route();
    } catch (e) {
      error.textContent = `Sign-in failed: ${e.message}`;
    }
  });
  replace(main, form);
}

// Records per second over the newest samples of Offset and Lag (about the last 10 s) while
// it runs; none otherwise (samples stop when the workers do).
function rate(status, samples) {
  if (status !== "RUNNING" || samples.length < 2) return null;
  const last = samples[samples.length - 1];
  const first = samples.find((s) => last.ts - s.ts <= 10_000) ?? samples[0];
  return last.ts > first.ts ? ((last.offset - first.offset) * 1000) / (last.ts - first.ts) : null;
}

function statusBadge(status) {
  return h("span", { class: `status ${status}`, "data-status": status }, status);
}

const ACTIONS = {
  start: ["Start", ["PUBLISHED", "STOPPED", "PAUSED", "RUN_ERROR"]],
  pause: ["Pause", ["RUNNING"]],
  stop: ["Stop", ["RUNNING", "PAUSED", "RUN_ERROR"]],
};

const CONSEQUENCES = {
  start: "Its workers start from the committed offsets and state.",
  pause: "Its workers commit and exit; state and offsets stay, ready for inspection.",
  stop: "Its workers exit and its stage state and offsets are cleared.",
};

function actionButtons(pipeline, after) {
  return Object.entries(ACTIONS).map(([action, [label, from]]) =>
    h(
      "button",
      {
        type: "button",
        class: action === "stop" ? "danger" : "secondary",
        disabled: !from.includes(pipeline.status),
        onclick: async () => {
          const name = pipeline.pipelineName || pipeline.pipelineId;
          if (!(await confirmAction(`${label} ${name}?`, CONSEQUENCES[action], label))) return;
          try {
            await api.operate(pipeline.pipelineId, action);
          } catch (e) {
            await confirmAction(`${label} failed`, e.message, "OK");
          }
          after();
        },
      },
      label,
    ),
  );
}

function pipelinesPage() {
  const status = h("div");
  const list = h("div");
  replace(main, h("h2", {}, "Pipelines"), status, list);
  const refresh = every(async () => {
    const [released, drafts] = await Promise.all([api.pipelines(), api.drafts()]);
    const pipelines = [...released.pipelines, ...drafts.pipelines];
    const rows = await Promise.all(
      pipelines.map(async (p) => {
        const [lag, activity] = await Promise.all([api.offsetLag(p.pipelineId), api.activity(p.pipelineId)]);
        return [
          h("a", { href: `#/pipeline/${encodeURIComponent(p.pipelineId)}` }, p.pipelineName || p.pipelineId),
          statusBadge(p.status),
          formatNumber(rate(p.status, lag.lagAndOffset)),
          formatNumber(activity.lag),
          activity.lastError ? `${activity.lastError.reason} (${time(activity.lastError.time)})` : "—",
          h("span", { class: "buttons" }, actionButtons(p, () => refresh())),
        ];
      }),
    );
    replace(list, table(["Name", "Status", "Records/s", "Lag", "Last error", ""], rows, "No pipelines in this org."));
  }, status);
}

function pipelinePage(id) {
  const status = h("div");
  const header = h("div", { class: "header" });
  const graph = h("div", { class: "graph" });
  const stages = h("div");
  const lagChart = h("div", { class: "lag-chart" });
  const partitions = h("div");
  const workers = h("div");
  const rejected = h("div");
  const state = statePanel(id);
  replace(
    main,
    h("p", {}, h("a", { href: "#/pipelines" }, "← Pipelines")),
    status,
    header,
    section("Stage graph", graph, stages),
    section("Lag", lagChart, partitions),
    section("Workers", workers),
    section("Rejected records", rejected),
    state.node,
  );
  const refresh = every(async () => {
    const [details, activity, lag, errors] = await Promise.all([
      api.details(id),
      api.activity(id),
      api.offsetLag(id),
      api.rejected(id),
    ]);
    replace(
      header,
      h("h2", {}, details.pipelineName || id, " ", statusBadge(activity.status)),
      h("p", { class: "muted" }, `${id} · records/s ${formatNumber(rate(activity.status, lag.lagAndOffset))} · lag ${formatNumber(activity.lag)}`),
      activity.lastError ? h("p", { class: "error" }, `Last error: ${activity.lastError.reason} (${time(activity.lastError.time)})`) : null,
      h("div", { class: "buttons" }, actionButtons({ ...details, status: activity.status }, () => refresh())),
    );
    replace(graph, stageGraph(activity.stages));
    replace(
      stages,
      table(
        ["Stage", "Type", "In", "Out", "Rejected", "State keys"],
        activity.stages.map((s) => [s.name, s.stageName, formatNumber(s.recordsIn), formatNumber(s.recordsOut), formatNumber(s.rejected), s.stateful ? formatNumber(s.stateKeys) : "—"]),
      ),
    );
    replace(lagChart, lineChart(lag.lagAndOffset.map((s) => ({ t: s.ts, v: s.lag })), { label: `lag of ${lag.topicName}` }));
    replace(
      partitions,
      table(["Topic", "Partition", "Committed offset", "End offset", "Lag"], activity.partitions.map((p) => [p.topic, String(p.partition), String(p.offset), String(p.endOffset), String(p.lag)])),
    );
    const w = activity.workers;
    replace(
      workers,
      h("p", { class: "muted" }, `status ${w.status ?? "not run by this service"} · restarts ${w.restarts} · failures in a row ${w.failures} · last exit code ${w.lastExitCode ?? "—"}`),
      table(["Worker", "Process"], w.pids.map((pid, k) => [String(k), pid === null ? "not running" : String(pid)]), "No workers."),
    );
    replace(
      rejected,
      table(
        ["Error-lane offset", "Stage", "Reason", "Record"],
        errors.records.map((e) => [String(e.errorOffset), e.stage, e.reason, h("code", {}, e.record ? JSON.stringify(e.record) : `raw ${e.raw}`)]),
        "No rejected records.",
      ),
    );
    await state.refresh(activity);
  }, status);
}

function section(title, ...children) {
  return h("section", {}, h("h3", {}, title), ...children);
}

// Per stateful stage: Get Stage State for assets x points, delete (dry-run count first, then a
// confirmation), the deletions kept for undo with restore, and the audit log.
function statePanel(id) {
  const stage = h("select", { name: "stage" });
  const assets = h("input", { name: "assetIds", placeholder: "meter-1,meter-2" });
  const points = h("input", { name: "pointIds", placeholder: "energy" });
  const result = h("div", { class: "state-result" });
  const deletions = h("div");
  const audit = h("div");
  const keys = () => ({ pipelineId: id, stageInstanceName: stage.value, assetIds: assets.value, pointIds: points.value });
  const show = (...nodes) => replace(result, ...nodes);
  const failed = (e) => show(h("p", { class: "error", role: "alert" }, e.message));

  const lookUp = async () => {
    try {
      const data = await api.state("get", keys());
      show(
        h("p", { class: "muted" }, `${data.items.length} key(s) hold state`),
        table(["Asset", "Point", "State"], data.items.map(({ assetId, pointId, ...rest }) => [assetId, pointId, h("code", {}, JSON.stringify(rest))]), "No state for these keys."),
      );
    } catch (e) {
      failed(e);
    }
  };
  const remove = async () => {
    try {
      const held = await api.state("delete", keys(), { dryRun: "true" });
      const count = (text) => new Set(text.split(",").map((x) => x.trim()).filter(Boolean)).size;
      const asked = `${count(assets.value) * count(points.value)} asked of ${stage.value}`;
      const message = `${held} key(s) hold state (${asked}); the pipeline must be paused. They are kept for restore.`;
      if (!(await confirmAction(`Delete ${held} key(s)?`, message, "Delete"))) {
        return show(h("p", { class: "muted" }, "Nothing deleted."));
      }
      await api.state("delete", keys());
      show(h("p", { class: "ok", role: "status" }, `Deleted ${held} key(s) of ${stage.value}.`));
      await panel.refresh();
    } catch (e) {
      failed(e);
    }
  };
  const restore = async (d) => {
    if (!(await confirmAction(`Restore ${d.keys} key(s)?`, `Put back what deletion ${d.deletionId} of ${d.stageInstanceName} removed.`, "Restore"))) return;
    try {
      const keysBack = await api.restore(id, d.deletionId);
      show(h("p", { class: "ok", role: "status" }, `Restored ${keysBack} key(s) of ${d.stageInstanceName}.`));
      await panel.refresh();
    } catch (e) {
      failed(e);
    }
  };

  const panel = {
    node: section(
      "Stage state",
      h(
        "form",
        { class: "state-form", onsubmit: (e) => { e.preventDefault(); lookUp(); } },
        h("label", {}, "Stage", stage),
        h("label", {}, "Asset IDs", assets),
        h("label", {}, "Point IDs", points),
        h("button", { type: "submit" }, "Look up"),
        h("button", { type: "button", class: "danger", onclick: remove }, "Delete…"),
      ),
      result,
      h("h4", {}, "Deletions"),
      deletions,
      h("h4", {}, "Audit log"),
      audit,
    ),
    async refresh(activity) {
      if (activity) {
        const stateful = activity.stages.filter((s) => s.stateful).map((s) => s.name);
        if (stage.options.length !== stateful.length) replace(stage, stateful.map((name) => h("option", { value: name }, name)));
      }
      const [kept, log] = await Promise.all([api.deletions(id), api.audit(id)]);
      replace(
        deletions,
        table(
          ["Time", "Stage", "Keys", "By", "Restored", ""],
          kept.deletions.map((d) => [
            time(d.time),
            d.stageInstanceName,
            String(d.keys),
            d.by,
            d.restoredAt ? time(d.restoredAt) : "—",
            d.restorable ? h("button", { type: "button", class: "secondary", onclick: () => restore(d) }, "Restore") : "",
          ]),
          "No deletions kept.",
        ),
      );
      replace(
        audit,
        table(["Time", "By", "Action", "Detail"], log.entries.map((e) => [time(e.time), e.actor, e.action, h("code", {}, JSON.stringify(e.detail))]), "No audit entries."),
      );
    },
  };
  return panel;
}

window.addEventListener("hashchange", route);
window.addEventListener("streamcalc:signed-out", route);
route();
