const express = require('express');
const bodyParser = require('body-parser');
const app = express();

// Configure Express to parse JSON payloads
app.use(bodyParser.json());

// Define a route to handle Referral Webhook notifications
app.post('/webhook', (req, res) => {
  const data = req.body;

  // Process the data from the webhook
  // Implement your logic here to handle the referral notification
  // For example, reward user, update your database, send notifications, etc.

  // Respond to the webhook request
  res.status(200).json({ message: 'Webhook received successfully' });
});

// Start the server
const port = process.env.PORT || 3000;
app.listen(port, () => {
  console.log(`Server is running on port ${port}`);
});
