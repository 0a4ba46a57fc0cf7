// Log in to Mosquitto with an application token, using MQTT.js.
//   npm install mqtt
//   TOKEN=mqtk_... node mqttjs_client.js [host] [port]
// The token is the MQTT password; the username is the token's name, by
// convention.
const mqtt = require('mqtt');

const host = process.argv[2] || '127.0.0.1';
const port = process.argv[3] || '1883';
const name = process.env.TOKEN_NAME || 'boiler-7';

const client = mqtt.connect(`mqtt://${host}:${port}`, {
  username: name,
  password: process.env.TOKEN,
  protocolVersion: 5,
  reconnectPeriod: 0, // a refused token will not get better by retrying
});

client.on('connect', () => {
  client.subscribe('sensors/#', (err) => {
    if (err) throw err;
    client.publish(`sensors/${name}/temperature`, '21.5');
  });
});

client.on('message', (topic, payload) => {
  console.log(topic, payload.toString());
  client.end();
});

client.on('error', (err) => {
  console.error(`login refused or connection failed: ${err.message}`);
  process.exit(1);
});
