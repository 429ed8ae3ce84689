from paycancel_cli.cli import main

main()
