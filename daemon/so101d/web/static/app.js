// so101d dashboard and calibration wizard. No library, no build step: the page talks to
// the web process (same origin) which forwards to the daemon's control socket.
"use strict";

const SESSION_KEY = "so101d.session"; // per tab: a reload re-attaches, another tab does not
const PLOT_SECONDS = 10;
const ROLES = ["leader", "follower"];
const COLORS = { leader: "#1565c0", follower: "#c62828" };
const STEP_HELP = {
  starting: "Pausing the pair and opening the arm…",
  confirming: "Read what will move. Nothing moves until you press Start.",
  calibrating: "The arm is moving on its own, one joint at a time. E-STOP stops it at once.",
  homing: "Move every joint to the middle of its range, then capture the neutral pose.",
  sweeping: "Move every joint from end stop to end stop, then press Done sweeping.",
  review: "Check the new values against the old ones, then save.",
  saving: "Saving the files and the servos' EEPROM…",
  saved: "Saved. The pair reconnects with the new calibration.",
  aborted: "",
};
const ABORTED = "Calibration was aborted (bus error or arm disconnected). Close and retry.";
const ABORTED_BY_ESTOP = "Calibration was aborted by the E-STOP. Close and retry.";
const DISCARD_QUESTION = {
  sweeping: "Discard the range-of-motion sweep?",
  review: "Discard the proposed calibration?",
  calibrating: "Stop the automatic calibration?",
};
const DISCARD_LABEL = { calibrating: "Stop" }; // else "Discard"
const CONFIRM_MOVE = "Move the arm now? Clear the workspace around the arm, then press Start (or Cancel).";

const plots = new Map(); // pair name -> [{t, leader, follower}]
const pairViews = new Map(); // pair name -> its section
let latest = null; // the newest snapshot from the stream
let wizard = null; // {session, pair, arm, state, lastStep, unswept}
let choosing = null; // "pair/role" whose Calibrate button shows "by hand" and "automatically"

function $(selector, root = document) {
  return root.querySelector(selector);
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

async function post(method, params = {}) {
  const reply = await fetch(`/api/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(params),
    credentials: "same-origin",
  });
  let body;
  try {
    body = await reply.json();
  } catch {
    body = { message: `${reply.status} ${reply.statusText}` };
  }
  if (!reply.ok) {
    const error = new Error(body.message || reply.statusText);
    error.status = reply.status;
    error.body = body;
    throw error;
  }
  return body;
}

function notify(text) {
  const notice = $("#notice");
  notice.textContent = text;
  notice.hidden = !text;
}

// -- the live stream ------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/api/stream");
  source.onmessage = (event) => onSnapshot(JSON.parse(event.data));
  source.onerror = () => {
    $("#link").textContent =
      source.readyState === EventSource.CLOSED
        ? "no access: open the link `sudo so101d web-url` prints"
        : "connection lost, retrying…";
  };
}

function onSnapshot(snapshot) {
  latest = snapshot;
  if (!snapshot.daemon) {
    $("#link").textContent = `daemon not reachable: ${snapshot.error}`;
    return;
  }
  $("#link").textContent = `live · so101d ${snapshot.daemon.version}`;
  reattach(snapshot.session);
  renderBanners(snapshot.files || {});
  for (const [name, pair] of Object.entries(snapshot.daemon.pairs)) {
    renderPair(name, pair, snapshot);
  }
  renderWizard();
}

// -- the dashboard ----------------------------------------------------------------------------

// The stream arrives five times a second: a part redrawn each time would replace a button under
// a finger (a tap whose press and release land on two elements is lost) or the keyboard focus.
function unchanged(container, data) {
  const signature = JSON.stringify(data);
  if (container.dataset.signature === signature) return true;
  container.dataset.signature = signature;
  return false;
}

function renderBanners(files) {
  const banners = $("#banners");
  if (unchanged(banners, files)) return;
  banners.replaceChildren();
  for (const [pair, arms] of Object.entries(files)) {
    for (const role of ROLES) {
      if (arms[role] && arms[role].state === "missing") {
        const banner = element("div", undefined, "banner bad");
        banner.setAttribute("role", "alert");
        banner.append(element("span", `Arm ${role} of pair ${pair} has no calibration file `));
        banner.append(calibrateButton(pair, role));
        banners.append(banner);
      }
    }
  }
}

function calibrateButton(pair, role) {
  const key = `${pair}/${role}`;
  const button = element("button", `Calibrate ${role}`);
  button.type = "button";
  button.setAttribute("aria-expanded", String(choosing === key));
  button.addEventListener("click", () => {
    choosing = choosing === key ? null : key;
    showChoices();
  });
  const choices = element("span", undefined, "choices");
  choices.dataset.key = key;
  choices.hidden = choosing !== key;
  choices.append(
    choiceButton("Calibrate by hand", () => startWizard(pair, role, false)),
    choiceButton("Calibrate automatically", () => startWizard(pair, role, true)),
  );
  const group = element("span", undefined, "calibrate");
  group.append(button, choices);
  return group;
}

function choiceButton(text, onClick) {
  const button = element("button", text);
  button.type = "button";
  button.addEventListener("click", onClick);
  return button;
}

function showChoices() {
  for (const choices of document.querySelectorAll(".choices")) {
    choices.hidden = choices.dataset.key !== choosing;
    choices.previousElementSibling.setAttribute("aria-expanded", String(!choices.hidden));
  }
}

function pairView(name) {
  let view = pairViews.get(name);
  if (!view) {
    view = $("#pair-template").content.firstElementChild.cloneNode(true);
    view.setAttribute("aria-label", `Pair ${name}`);
    $(".pair-name", view).textContent = `Pair ${name}`;
    $(".pause", view).addEventListener("click", () => act("pause", { pair: name }));
    $(".resume", view).addEventListener("click", () => act("resume", { pair: name }));
    $("#pairs").append(view);
    pairViews.set(name, view);
  }
  return view;
}

function renderPair(name, pair, snapshot) {
  const view = pairView(name);
  $(".state-name", view).textContent = pair.state;
  $(".reason", view).textContent = pair.reason;
  $(".rate", view).textContent = `${fixed(pair.rate_hz, 1)} Hz`;
  $(".p50", view).textContent = `${fixed(pair.cycle_p50_ms, 2)} ms`;
  $(".p99", view).textContent = `${fixed(pair.cycle_p99_ms, 2)} ms`;
  $(".errors", view).textContent = String(pair.errors);
  $(".restarts", view).textContent = String(pair.restarts);
  renderMotors($(".motors tbody", view), pair);
  renderCards($(".cards", view), name, (snapshot.files || {})[name] || {});
  renderPrecheck($(".precheck tbody", view), pair.precheck);
  record(name, pair.positions, snapshot.at);
  drawPlot($(".plot", view), plots.get(name) || []);
}

function renderMotors(body, pair) {
  body.replaceChildren();
  const joints = Object.keys(pair.temperatures || {});
  if (!joints.length) {
    body.append(placeholderRow("no current readings (the follower is not running)", 3));
    return;
  }
  for (const joint of joints) {
    const row = element("tr");
    row.append(element("td", joint), element("td", String(pair.temperatures[joint])));
    row.append(element("td", fixed((pair.voltages || {})[joint], 1)));
    body.append(row);
  }
}

function placeholderRow(text, columns) {
  const row = element("tr");
  const cell = element("td", text);
  cell.colSpan = columns;
  row.append(cell);
  return row;
}

function renderCards(cards, pair, arms) {
  if (unchanged(cards, arms)) return;
  cards.replaceChildren();
  for (const role of ROLES) {
    const file = arms[role];
    if (!file) continue;
    const card = element("article", undefined, "card");
    card.setAttribute("aria-label", `Calibration of the ${role}`);
    card.append(element("h4", `${role} '${file.id}'`));
    card.append(element("p", file.state.toUpperCase(), `verdict-${file.state}`));
    for (const error of file.errors) card.append(element("p", error, "error"));
    card.append(element("p", file.modified ? `file time ${file.modified}` : `expected at ${file.path}`));
    if (file.modified) card.append(element("p", file.path));
    for (const warning of file.warnings) card.append(element("p", `warning: ${warning}`, "verdict-warn"));
    card.append(calibrateButton(pair, role));
    cards.append(card);
  }
}

function renderPrecheck(body, precheck) {
  body.replaceChildren();
  if (!precheck) {
    body.append(placeholderRow("no precheck has run yet", 3));
    return;
  }
  for (const check of precheck.checks) {
    const row = element("tr");
    row.append(element("td", check.check));
    for (const role of ROLES) {
      row.append(element("td", check[role].text, `verdict-${check[role].status.toLowerCase()}`));
    }
    body.append(row);
  }
}

async function act(method, params) {
  try {
    await post(method, params);
    notify("");
  } catch (error) {
    notify(error.message);
  }
}

async function emergencyStop() {
  try {
    const result = await post("estop");
    const releases = Object.entries(result.pairs);
    const details = releases.map(([name, release]) => `${name}: ${release.detail}`).join("; ");
    notify(
      releases.every(([, release]) => release.torque_off)
        ? `E-STOP: every follower's torque is off (${details}). Resume a pair to mirror again.`
        : `E-STOP: torque off NOT confirmed everywhere (${details}); switch off the follower's power.`,
    );
  } catch (error) {
    notify(`E-STOP failed: ${error.message}. Cut the follower's power.`);
  }
}

// -- the plot: leader solid, follower dashed, one band per joint ---------------------------

function record(name, positions, at) {
  const samples = plots.get(name) || [];
  if (positions && positions.leader && positions.follower) {
    samples.push({ t: at, leader: positions.leader, follower: positions.follower });
  }
  while (samples.length && samples[0].t < at - PLOT_SECONDS) samples.shift();
  plots.set(name, samples);
}

function drawPlot(canvas, samples) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  if (samples.length < 2) {
    context.fillStyle = "#555";
    context.fillText("no joint angles: the pair is not mirroring", 10, 20);
    return;
  }
  const joints = Object.keys(samples[0].leader);
  const band = height / joints.length;
  const end = samples[samples.length - 1].t;
  const x = (t) => 90 + ((t - (end - PLOT_SECONDS)) / PLOT_SECONDS) * (width - 95);
  joints.forEach((joint, index) => {
    const values = samples.flatMap((s) => [s.leader[joint], s.follower[joint]]);
    const low = Math.min(...values) - 1;
    const high = Math.max(...values) + 1;
    const top = index * band;
    const y = (v) => top + band - 4 - ((v - low) / (high - low)) * (band - 8);
    context.strokeStyle = "#ddd";
    context.setLineDash([]);
    context.beginPath();
    context.moveTo(0, top + band);
    context.lineTo(width, top + band);
    context.stroke();
    context.fillStyle = "#333";
    context.fillText(joint, 4, top + band / 2);
    context.fillText(`${samples[samples.length - 1].leader[joint].toFixed(0)}°`, 4, top + band / 2 + 12);
    for (const role of ROLES) {
      context.strokeStyle = COLORS[role];
      context.setLineDash(role === "leader" ? [] : [5, 4]);
      context.beginPath();
      samples.forEach((s, i) => {
        const point = [x(s.t), y(s[role][joint])];
        if (i === 0) context.moveTo(...point);
        else context.lineTo(...point);
      });
      context.stroke();
    }
  });
}

// -- the wizard -------------------------------------------------------------------------------

async function startWizard(pair, role, auto) {
  choosing = null;
  showChoices();
  try {
    const state = await post("calibrate.start", { pair, arm: role, auto });
    openWizard(state);
    notify("");
  } catch (error) {
    notify(error.message); // 409: another session is active, and the message names it
  }
}

function openWizard(state) {
  wizard = { session: state.session, state, lastStep: state.step, unswept: [], confirm: null };
  sessionStorage.setItem(SESSION_KEY, state.session);
  $("#wizard-error").textContent = "";
  renderWizard();
  $("#wizard").scrollIntoView({ block: "start" });
}

function reattach(session) {
  const remembered = sessionStorage.getItem(SESSION_KEY);
  if (wizard || !remembered) return;
  if (session && session.session === remembered) openWizard(session);
  else sessionStorage.removeItem(SESSION_KEY);
}

function closeWizard() {
  wizard = null;
  sessionStorage.removeItem(SESSION_KEY);
  renderWizard();
}

function currentState() {
  const live = latest && latest.session;
  if (live && live.session === wizard.session && live.seq >= wizard.state.seq) wizard.state = live;
  return wizard.state;
}

function renderWizard() {
  const section = $("#wizard");
  section.hidden = !wizard;
  if (!wizard) return;
  const state = currentState();
  const step = state.step;
  if (state.active) wizard.lastStep = step;
  if (step !== "sweeping") wizard.unswept = [];
  const how = state.auto ? " automatically" : "";
  $("#wizard-title").textContent = `Calibrate the ${state.arm} of pair ${state.pair}${how}`;
  $("#wizard-what").textContent = `Session ${state.session}, arm '${state.arm_id}': ${state.reason}`;
  for (const item of section.querySelectorAll(".steps li")) {
    item.hidden = !stepShown(item.dataset, state);
    item.classList.toggle("current", item.dataset.step === wizard.lastStep);
  }
  const aborted = step === "aborted";
  $("#wizard-aborted").hidden = !aborted;
  $("#wizard-aborted-reason").textContent = aborted ? state.reason : "";
  $("#wizard-aborted strong").textContent =
    state.reason === "emergency stop" ? ABORTED_BY_ESTOP : ABORTED;
  $("#wizard-help").textContent = handSweepHelp(state) || STEP_HELP[step] || "";
  for (const button of section.querySelectorAll(".actions [data-for]")) {
    button.hidden = button.dataset.for !== wizard.lastStep;
    button.disabled = !state.active || button.dataset.for !== step;
  }
  if (step === "review" && state.review) $("#wizard-save").disabled = state.review.errors.length > 0;
  $("#wizard-cancel").hidden = !state.active;
  $("#wizard-close").hidden = state.active;
  if (!state.active || DISCARD_QUESTION[step] !== wizard.confirm) wizard.confirm = null;
  $("#wizard-discard").textContent = DISCARD_LABEL[step] || "Discard";
  $("#wizard-confirm").hidden = !wizard.confirm;
  $("#wizard-confirm-text").textContent = wizard.confirm || "";
  renderWizardBody($("#wizard-body"), state);
}

function stepShown(item, state) {
  if (!item.mode) return !(state.auto && item.step === "sweeping" && wizard.lastStep !== "sweeping");
  return item.mode === (state.auto ? "auto" : "hand");
}

function failedJoints(state) {
  return (state.auto && state.auto.failed) || [];
}

function handSweepHelp(state) {
  const failed = failedJoints(state);
  if (state.step !== "sweeping" || !failed.length) return "";
  return `Sweep only ${failed.join(", ")} by hand from end stop to end stop (the others are kept), then press Done sweeping.`;
}

function renderWizardBody(body, state) {
  body.replaceChildren();
  const shown = state.step === "aborted" ? wizard.lastStep : state.step;
  if (state.step === "homing") body.append(ticksTable(state.joints));
  else if (state.step === "confirming") body.append(...planParts(state.auto.plan));
  else if (shown === "calibrating") body.append(...progressParts(state.auto.progress));
  else if (shown === "sweeping") {
    body.append(...failureParts(state), sweepTable(state));
  } else if (state.review && ["review", "saving", "saved"].includes(state.step)) {
    body.append(...reviewParts(state.review));
    if (state.step === "saved") {
      for (const saved of state.saved) body.append(element("p", `saved ${saved.path}` + (saved.backup ? ` (backup ${saved.backup})` : "")));
    }
  }
}

function planParts(plan) {
  return [element("p", plan.message, "plan"), element("p", CONFIRM_MOVE)];
}

function progressParts(progress) {
  if (!progress) return [element("p", "starting…")];
  const [done, total] = progress.progress.split(" ")[0].split("/").map(Number);
  const bar = element("progress");
  bar.max = total;
  bar.value = done;
  bar.setAttribute("aria-label", "Motors calibrated");
  const hottest = Math.max(0, ...Object.values(progress.temperatures));
  const status = progress.status === "calibrating" ? "" : `  ${progress.status.toUpperCase()}`;
  const line = `${progress.progress}  ${progress.current_motor || ""}  ${fixed(progress.time_elapsed, 1)} s, ~${fixed(progress.estimated_remaining, 1)} s left  max ${hottest} °C${status}`;
  const rows = Object.entries(progress.temperatures).map(([joint, celsius]) => ({
    cells: [joint, celsius],
    className: joint === progress.current_motor ? "moving" : "",
  }));
  return [bar, element("p", line, "progress"), table(["motor", "temperature °C"], rows)];
}

function failureParts(state) {
  const joints = (state.auto && state.auto.joints) || {};
  return failedJoints(state).map((joint) => element("p", `not calibrated automatically: ${joint}: ${joints[joint].failure}`, "error"));
}

function table(headings, rows) {
  const node = element("table");
  const head = element("tr");
  for (const heading of headings) head.append(element("th", heading));
  node.append(element("thead"));
  node.tHead.append(head);
  const body = element("tbody");
  for (const { cells, className } of rows) {
    const row = element("tr", undefined, className);
    for (const cell of cells) row.append(element("td", String(cell)));
    body.append(row);
  }
  node.append(body);
  return node;
}

function ticksTable(joints) {
  return table(
    ["joint", "raw ticks"],
    Object.entries(joints).map(([name, joint]) => ({ cells: [name, joint.raw] })),
  );
}

function sweepTable(state) {
  const rows = Object.entries(state.joints).map(([name, joint]) => ({
    cells: [name, joint.min ?? "–", joint.position ?? joint.raw, joint.max ?? "–", joint.range ?? "–", sweepFlags(name, joint, state)],
    className: wizard.unswept.includes(name) ? "unswept" : "",
  }));
  return table(["joint", "min", "POS", "max", "range", ""], rows);
}

function sweepFlags(name, joint, state) {
  if (name === "wrist_roll" && state.full_turn_wrist_roll) return "full turn (0..4095)";
  const flags = [];
  if (joint.too_wide) flags.push("wider than this joint can turn");
  if (joint.crosses_seam) flags.push("crosses the encoder seam: re-centred at done");
  if (joint.barely_swept) flags.push("not swept yet");
  return flags.join("; ");
}

function reviewParts(review) {
  const cell = (old, value, key) => `${old ? old[key] : "–"} → ${value[key]}`;
  const rows = Object.entries(review.joints).map(([name, entry]) => ({
    cells: ["homing_offset", "range_min", "range_max"].reduce((cells, key) => [...cells, cell(entry.old, entry.new, key)], [name]),
  }));
  const parts = [element("p", `file: ${review.path}`), table(["joint", "homing_offset", "range_min", "range_max"], rows)];
  for (const error of review.errors) parts.push(element("p", `error: ${error}`, "error"));
  for (const warning of review.warnings) parts.push(element("p", `warning: ${warning}`, "verdict-warn"));
  if (!review.errors.length && !review.warnings.length) parts.push(element("p", "validator: ok", "verdict-ok"));
  return parts;
}

async function wizardStep(method) {
  try {
    const state = await post(method, { session: wizard.session });
    wizard.state = state;
    wizard.unswept = [];
    $("#wizard-error").textContent = "";
  } catch (error) {
    wizard.unswept = (error.body && error.body.unswept) || [];
    $("#wizard-error").textContent = wizard.unswept.length
      ? `Not swept yet: ${wizard.unswept.join(", ")}. Move each from end stop to end stop, then press Done sweeping again.`
      : error.message;
  }
  renderWizard();
}

function cancelWizard() {
  const question = DISCARD_QUESTION[currentState().step];
  if (question) {
    wizard.confirm = question;
    renderWizard();
    $("#wizard-discard").focus();
    return;
  }
  discard();
}

function discard() {
  const session = wizard.session;
  closeWizard();
  post("calibrate.abort", { session }).catch((error) => notify(error.message));
}

function setUp() {
  $("#estop").addEventListener("click", emergencyStop);
  $("#wizard-start").addEventListener("click", () => wizardStep("calibrate.confirm"));
  $("#wizard-capture").addEventListener("click", () => wizardStep("calibrate.capture"));
  $("#wizard-done").addEventListener("click", () => wizardStep("calibrate.done"));
  $("#wizard-save").addEventListener("click", () => wizardStep("calibrate.save"));
  $("#wizard-cancel").addEventListener("click", cancelWizard);
  $("#wizard-discard").addEventListener("click", discard);
  $("#wizard-keep").addEventListener("click", () => {
    wizard.confirm = null;
    renderWizard();
  });
  $("#wizard-close").addEventListener("click", closeWizard);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && wizard && !$("#wizard-cancel").hidden) cancelWizard();
  });
  connect();
}

setUp();
