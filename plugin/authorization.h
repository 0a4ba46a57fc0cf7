#ifndef AUTHORIZATION_H
#define AUTHORIZATION_H

/* MOSQ_EVT_ACL_CHECK; userdata is the plugin instance. */
int authorization_on_acl_check(int event, void *event_data, void *userdata);

#endif
