// chatrec web chat: plain JavaScript over the JSON API (see /openapi.json). No build step.
"use strict";

const state = {
  userId: null,
  conversationId: null,
  liked: new Set(),     // "domain/item_id"
  disliked: new Set(),
  busy: false,
};

const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.classList.toggle("error", !!isError);
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const message = data && data.error ? data.error.message : res.status + " " + res.statusText;
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return data;
}

// POST with Accept: text/event-stream; calls handlers[event](data) for each server-sent event.
async function stream(path, body, handlers) {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try { message = (await res.json()).error.message; } catch (e) { /* keep the status line */ }
    throw new Error(message);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (handlers[event]) handlers[event](JSON.parse(data.join("\n")));
    }
  }
}

function key(domain, itemId) { return domain + "/" + itemId; }

function addMessage(role, text) {
  const wrap = document.createElement("div");
  wrap.className = "message " + role;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.textContent = text || "";
  wrap.appendChild(bubble);
  $("messages").appendChild(wrap);
  $("messages").scrollTop = $("messages").scrollHeight;
  return wrap;
}

function addNote(wrap, text) {
  const note = document.createElement("div");
  note.className = "note";
  note.textContent = text;
  wrap.appendChild(note);
}

function refreshCard(card) {
  const k = key(card.dataset.domain, card.dataset.itemId);
  card.classList.toggle("liked", state.liked.has(k));
  card.classList.toggle("disliked", state.disliked.has(k));
  const label = card.querySelector(".feedback-state");
  label.textContent = state.liked.has(k) ? "liked" : state.disliked.has(k) ? "disliked" : "";
}

const SOURCE_HELP = {
  collaborative: "picked by the recommender from people with similar tastes",
  "cold-start": "a new item, matched to your taste by its description",
  llm: "picked by the language model from the recommender's candidates",
};

function renderCards(wrap, recommendations) {
  if (!recommendations || recommendations.length === 0) return;
  const cards = document.createElement("div");
  cards.className = "cards";
  for (const rec of recommendations) {
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.domain = rec.domain;
    card.dataset.itemId = rec.item_id;
    const title = document.createElement("div");
    title.className = "title";
    const hasYear = rec.year && rec.title.includes("(" + rec.year + ")");
    title.textContent = rec.title + (rec.year && !hasYear ? " (" + rec.year + ")" : "");
    const meta = document.createElement("div");
    meta.className = "meta";
    const badge = document.createElement("span");
    badge.className = "badge " + rec.source;
    badge.textContent = rec.source;
    // The source says where the pick came from; the score is only a rank within this list and tells a
    // person nothing, so it is not shown.
    badge.title = SOURCE_HELP[rec.source] || "";
    meta.append(rec.domain + " ", badge);
    card.append(title, meta);
    if (rec.reason) {
      const reason = document.createElement("div");
      reason.className = "reason";
      reason.textContent = rec.reason;
      card.appendChild(reason);
    }
    const actions = document.createElement("div");
    actions.className = "actions";
    const why = button("why?", "secondary why", () => explain(rec));
    const like = button("Like", "secondary like", () => feedback(rec, true, card));
    const dislike = button("Dislike", "secondary dislike", () => feedback(rec, false, card));
    like.title = "like";
    dislike.title = "dislike";
    const fb = document.createElement("span");
    fb.className = "feedback-state";
    actions.append(why, like, dislike, fb);
    card.appendChild(actions);
    cards.appendChild(card);
    refreshCard(card);
  }
  wrap.appendChild(cards);
}

function button(text, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function setBusy(busy) {
  state.busy = busy;
  const ready = !!state.conversationId && !busy;
  $("message").disabled = !ready;
  $("send").disabled = !ready;
}

async function streamTurn(path, body) {
  setBusy(true);
  const wrap = addMessage("assistant", "");
  const bubble = wrap.querySelector(".bubble");
  let text = "";
  try {
    await stream(path, body, {
      token: (d) => {
        text += d.text;
        bubble.textContent = text;
        $("messages").scrollTop = $("messages").scrollHeight;
      },
      recommendations: (d) => renderCards(wrap, d.recommendations),
      done: (d) => {
        if (d.reply && d.reply !== text) bubble.textContent = d.reply;
        if (d.degraded) addNote(wrap, "LLM unavailable for part of this answer: " + (d.notes || []).join("; "));
        setStatus("");
      },
      error: (d) => { throw new Error(d.error.message); },
    });
  } catch (e) {
    addNote(wrap, "error: " + e.message);
    setStatus(e.message, true);
  } finally {
    setBusy(false);
    refreshConversations();
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text || !state.conversationId || state.busy) return;
  $("message").value = "";
  addMessage("user", text);
  await streamTurn("/api/conversations/" + state.conversationId + "/messages", { text });
}

async function explain(rec) {
  if (!state.conversationId || state.busy) return;
  addMessage("user", "Why " + rec.title + "?");
  await streamTurn("/api/conversations/" + state.conversationId + "/explain",
                   { domain: rec.domain, item_id: rec.item_id });
}

async function feedback(rec, liked, card) {
  if (!state.conversationId) return;
  try {
    await api("POST", "/api/interactions", {
      user_id: state.userId, domain: rec.domain, item_id: rec.item_id,
      kind: liked ? "like" : "dislike", conversation_id: state.conversationId,
    });
    const k = key(rec.domain, rec.item_id);
    (liked ? state.liked : state.disliked).add(k);
    (liked ? state.disliked : state.liked).delete(k);
    document.querySelectorAll(".card").forEach(refreshCard);
    setStatus((liked ? "Liked " : "Disliked ") + rec.title);
  } catch (e) {
    setStatus(e.message, true);
  }
  void card;
}

async function openConversation(id) {
  const conv = await api("GET", "/api/conversations/" + encodeURIComponent(id));
  state.conversationId = conv.id;
  state.liked = new Set(conv.liked.map((r) => key(r.domain, r.item_id)));
  state.disliked = new Set(conv.disliked.map((r) => key(r.domain, r.item_id)));
  localStorage.setItem("chatrec.conversation", conv.id);
  $("messages").innerHTML = "";
  for (const m of conv.messages) {
    const wrap = addMessage(m.role, m.content);
    if (m.recommendations) renderCards(wrap, m.recommendations);
    if (m.degraded) addNote(wrap, "LLM unavailable for part of this answer");
  }
  document.querySelectorAll("#conversations a").forEach((a) => {
    a.classList.toggle("active", a.dataset.id === conv.id);
  });
  setBusy(false);
}

async function refreshConversations() {
  if (!state.userId) return;
  const data = await api("GET", "/api/users/" + encodeURIComponent(state.userId) + "/conversations");
  const list = $("conversations");
  list.innerHTML = "";
  const sorted = data.conversations.slice().sort((a, b) => b.updated_at - a.updated_at);
  for (const c of sorted) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#";
    a.dataset.id = c.id;
    a.textContent = new Date(c.updated_at * 1000).toLocaleString() + " · " + c.id.slice(0, 6);
    a.classList.toggle("active", c.id === state.conversationId);
    a.addEventListener("click", (e) => { e.preventDefault(); openConversation(c.id).catch(showError); });
    li.appendChild(a);
    list.appendChild(li);
  }
  return sorted;
}

async function useUser(id, resume) {
  const user = await api("GET", "/api/users/" + encodeURIComponent(id));
  state.userId = user.id;
  localStorage.setItem("chatrec.user", user.id);
  const attrs = Object.entries(user.attributes || {}).map(([k, v]) => k + ": " + v).join(", ");
  $("user-info").textContent = "Chatting as " + user.id + (attrs ? " (" + attrs + ")" : "");
  $("new-conversation").disabled = false;
  const conversations = await refreshConversations();
  const saved = localStorage.getItem("chatrec.conversation");
  if (resume && saved && conversations.some((c) => c.id === saved)) {
    await openConversation(saved);
  } else if (conversations.length > 0) {
    await openConversation(conversations[0].id);
  } else {
    await newConversation();
  }
}

async function newConversation() {
  const conv = await api("POST", "/api/conversations", { user_id: state.userId });
  state.conversationId = conv.id;
  await refreshConversations();
  await openConversation(conv.id);
}

function showError(e) { setStatus(e.message, true); }

async function loadUsers() {
  try {
    const data = await api("GET", "/api/users?limit=50");
    const list = $("user-list");
    list.textContent = "";
    for (const u of data.users) {
      const o = document.createElement("option");
      o.value = u.id;
      list.appendChild(o);
    }
  } catch (e) {
    showError(e);
  }
}

$("user-form").addEventListener("submit", (e) => {
  e.preventDefault();
  useUser($("user-id").value.trim(), false).catch(showError);
});
$("create-user").addEventListener("click", async () => {
  const id = $("user-id").value.trim();
  if (!id) return;
  try {
    await api("POST", "/api/users", { id });
    await useUser(id, false);
    setStatus("Created user " + id);
  } catch (e) {
    showError(e);
  }
});
$("new-conversation").addEventListener("click", () => newConversation().catch(showError));
$("message-form").addEventListener("submit", send);
$("api-key").value = localStorage.getItem("chatrec.key") || "";
$("api-key").addEventListener("change", () => {
  localStorage.setItem("chatrec.key", $("api-key").value.trim());
  start().catch(showError);
});

// A user key acts for one user: chat as that user. An admin key (or a server without keys) may
// pick any user from the list.
async function start() {
  let me = null;
  try {
    me = await api("GET", "/api/me");
  } catch (e) {
    if (e.status === 401) {
      setStatus("This server needs an API key (left, under API key).", true);
      return;
    }
    throw e;
  }
  setStatus("");
  if (me.scope === "user") {
    $("user-id").value = me.user_id;
    $("user-id").readOnly = true;
    $("create-user").disabled = true;
    await useUser(me.user_id, true);
    return;
  }
  $("user-id").readOnly = false;
  $("create-user").disabled = false;
  await loadUsers();
  const savedUser = localStorage.getItem("chatrec.user");
  if (savedUser) {
    $("user-id").value = savedUser;
    await useUser(savedUser, true);
  }
}

start().catch(showError);
