// The web page as a person uses it, on a server with API keys: with an admin key pick a user, chat,
// get cards, dislike one, reload, and find the conversation and the feedback as they were; then with
// a user key the page chats as that key's user and cannot read the first user's conversation.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";

const url = process.env.CHATREC_URL;
const artifacts = process.env.CHATREC_ARTIFACTS;
const context = await chromium.launchPersistentContext(process.env.CHATREC_PROFILE, {
  executablePath: process.env.CHATREC_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const turnTimeout = 180000;
let failed = 0;
const page = context.pages()[0] || (await context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
// The server's Content-Security-Policy must not block anything the page does.
page.on("console", (m) => {
  if (m.type() === "error" && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
});
try {
  await page.goto(url);
  // Without a key the page says it needs one.
  await page.waitForFunction(() => /API key/.test(document.querySelector("#status").textContent),
                             null, { timeout: 10000 });
  await page.fill("#api-key", process.env.CHATREC_ADMIN_KEY);
  await page.dispatchEvent("#api-key", "change");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "", null,
                             { timeout: 10000 });
  await page.fill("#user-id", "1");
  await page.click("#pick-user");
  // A new conversation is created for a user without one, which enables the message box.
  await page.waitForSelector("#message:not([disabled])", { timeout: 30000 });
  assert.match(await page.textContent("#user-info"), /Chatting as 1/);

  await page.fill("#message", "Recommend me a comedy movie");
  await page.click("#send");
  await page.waitForSelector(".message.assistant .card", { timeout: turnTimeout });
  await page.waitForSelector("#message:not([disabled])", { timeout: turnTimeout });
  const cards = page.locator(".message.assistant .card");
  const count = await cards.count();
  assert.ok(count >= 1, "no recommendation cards");
  const first = cards.first();
  const itemId = await first.getAttribute("data-item-id");
  const title = await first.locator(".title").textContent();
  const badge = await first.locator(".badge").textContent();
  assert.ok(["collaborative", "cold-start", "llm"].includes(badge), "source badge " + badge);
  // No rank-derived numbers on a card: they tell a person nothing.
  const meta = await first.locator(".meta").textContent();
  assert.ok(!/score|\d\.\d{3}/.test(meta), "card shows a score: " + meta);
  const reply = await page.locator(".message.assistant .bubble").first().textContent();
  assert.ok(reply.trim().length > 0, "empty reply");
  // The reply does not repeat, line by line, the list the cards show.
  assert.ok(!reply.includes("1. " + title), "the reply repeats the cards: " + reply);

  await first.locator("button.dislike").click();
  await page.waitForSelector(`.card.disliked[data-item-id="${itemId}"]`, { timeout: 10000 });

  await page.reload();
  await page.waitForSelector(".message.user .bubble", { timeout: 30000 });
  assert.equal(await page.locator(".message.user .bubble").first().textContent(), "Recommend me a comedy movie");
  await page.waitForSelector(`.card.disliked[data-item-id="${itemId}"]`, { timeout: 10000 });
  assert.equal(await page.locator(".message.assistant .card").count(), count, "cards after reload");

  // The dislike is visible in the next turn: the item is not recommended again.
  await page.waitForSelector("#message:not([disabled])", { timeout: 30000 });
  await page.fill("#message", "Show me more please");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll(".message.assistant .cards").length >= 2,
                             null, { timeout: turnTimeout });
  await page.waitForSelector("#message:not([disabled])", { timeout: turnTimeout });
  const latest = page.locator(".message.assistant .cards").last().locator(".card");
  const latestIds = await latest.evaluateAll((els) => els.map((e) => e.dataset.itemId));
  assert.ok(!latestIds.includes(itemId), `disliked ${title} recommended again`);
  const firstConversation = await page.evaluate(() => localStorage.getItem("chatrec.conversation"));

  // A user key: the page switches to its user, and the other user's conversation is not found.
  await page.fill("#api-key", process.env.CHATREC_USER_KEY);
  await page.dispatchEvent("#api-key", "change");
  await page.waitForFunction(() => /Chatting as 2\b/.test(document.querySelector("#user-info").textContent),
                             null, { timeout: 30000 });
  assert.equal(await page.inputValue("#user-id"), "2");
  await page.waitForSelector("#message:not([disabled])", { timeout: 30000 });
  await page.fill("#message", "Recommend me a movie");
  await page.click("#send");
  await page.waitForSelector(".message.assistant .card", { timeout: turnTimeout });
  const status = await page.evaluate(async ([id, key]) => {
    const r = await fetch("/api/conversations/" + id, { headers: { Authorization: "Bearer " + key } });
    return r.status;
  }, [firstConversation, process.env.CHATREC_USER_KEY]);
  assert.equal(status, 404, "user 2's key read user 1's conversation");
  assert.deepEqual(pageErrors, []);
  console.log(`e2e: ${count} cards, disliked "${title}" persisted across reload and excluded next turn; ` +
              "a user key chats as its user and cannot read another's conversation");
} catch (e) {
  failed = 1;
  console.error(e);
} finally {
  await page.screenshot({ path: path.join(artifacts, "web-chat.png"), fullPage: true }).catch(() => {});
  await context.close();
}
console.log(`${1 - failed} passed, ${failed} failed`);
process.exit(failed);
