// Package dispatch handles event:dispatch: it loads a committed outbox event
// and enqueues one task per effect of that event (render the PDF, and later
// send the emails, deliver the webhooks, sync the accounting system). Every
// effect task gets a TaskID derived from the event and the effect, so
// dispatching the same event twice enqueues nothing new.
package dispatch
