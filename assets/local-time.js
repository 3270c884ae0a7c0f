// The console's one script: shows each <time datetime> in the viewer's own time zone, and
// keeps the UTC instant it was written in as its title (hover). Without it, times read in UTC.
for (const time of document.querySelectorAll("time[datetime]")) {
  const instant = new Date(time.dateTime);
  if (Number.isNaN(instant.getTime())) continue;
  time.title = time.textContent;
  time.textContent = instant.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}
