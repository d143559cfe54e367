// Command taskpulse serves the taskpulse GraphQL API with live subscriptions.
package main

func main() {}
