// Jira project settings page: the project's Inflow settings, for project admins.
import { view } from '@forge/bridge';
import { mountProjectSettings } from '../../ui/settings.js';

view.getContext().then((context) => mountProjectSettings(document.getElementById('app'), context.extension.project.key));
