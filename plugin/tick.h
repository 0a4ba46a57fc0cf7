#ifndef TICK_H
#define TICK_H

/* MOSQ_EVT_TICK: closes connections of expired tokens, runs queued kicks,
 * saves lastUsed when due. userdata is the plugin instance. */
int tick_on_tick(int event, void *event_data, void *userdata);

#endif
