import { mount } from "svelte";
import App from "./App.svelte";
import AlertApp from "./AlertApp.svelte";
import { windowLabel } from "./lib/api";
import "./app.css";

const target = document.getElementById("app");
if (!target) throw new Error("no #app element");
// One bundle, two windows: the fallback alert window gets the alert only.
mount(windowLabel() === "alert" ? AlertApp : App, { target });
